-- name: principal-activity
-- description: Everything one principal did in a window: calls made as an IAM user or role ARN, or in any session of that role
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
-- param: principal  string     the principal's ARN: arn:aws:iam::111122223333:user/alice, a role ARN (every session of it), or one session's arn:aws:sts::...:assumed-role/ROLE/SESSION
SELECT eventtime, recipientaccountid, awsregion, eventsource, eventname, errorcode,
       useridentity.arn AS principal, useridentity.accesskeyid AS access_key,
       sourceipaddress, useragent, requestparameters, eventid
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND ? IN (useridentity.arn, useridentity.sessioncontext.sessionissuer.arn)
ORDER BY eventtime, eventid
