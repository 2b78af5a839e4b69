-- The quickstart target. `ferry schema` will generate tables like this one; for now it is
-- written by hand. The transform renames `amount` into `amount_cents`.
CREATE TABLE IF NOT EXISTS public.events (
  account_id   bigint      NOT NULL,
  event_id     uuid        NOT NULL,
  kind         text,
  amount_cents bigint,
  ok           boolean,
  seq          integer,
  at           timestamptz,
  PRIMARY KEY (account_id, event_id)
);
