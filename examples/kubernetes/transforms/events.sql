-- shop.events -> shop.events: the columns the application reads, amounts in cents.
SELECT account_id,
       event_id,
       lower(kind) AS kind,
       CAST(round(amount * 100) AS BIGINT) AS amount_cents,
       ok,
       at
FROM source
