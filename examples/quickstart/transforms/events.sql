-- Runs over each split of quickstart.events, registered as `source`.
SELECT
  account_id,
  event_id,
  upper(kind)                          AS kind,
  CAST(round(amount * 100) AS BIGINT)  AS amount_cents,
  ok,
  seq,
  at
FROM source
