-- name: root-activity
-- description: Calls made by an account's root user itself, not by a service on its behalf (CIS: root account usage)
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
SELECT eventtime, recipientaccountid, awsregion, eventsource, eventname, errorcode,
       useridentity.arn AS principal, sourceipaddress, useragent, eventid
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND useridentity.type = 'Root'
  AND useridentity.invokedby IS NULL
  AND eventtype <> 'AwsServiceEvent'
ORDER BY eventtime, eventid
