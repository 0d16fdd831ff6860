-- name: kms-key-changes
-- description: KMS keys disabled, scheduled for deletion (or saved from it), or given a new key policy (CIS: disabling or deleting customer keys)
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
SELECT eventtime, recipientaccountid, awsregion, eventname, errorcode,
       coalesce(json_extract_scalar(responseelements, '$.keyId'),
                json_extract_scalar(requestparameters, '$.keyId')) AS key_id,
       useridentity.arn AS principal, sourceipaddress, requestparameters, eventid
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND eventsource = 'kms.amazonaws.com'
  AND eventname IN ('DisableKey', 'ScheduleKeyDeletion', 'CancelKeyDeletion',
                    'PutKeyPolicy', 'DisableKeyRotation')
ORDER BY eventtime, eventid
