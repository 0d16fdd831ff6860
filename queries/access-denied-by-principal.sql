-- name: access-denied-by-principal
-- description: Calls refused for lack of permission (AccessDenied*, *UnauthorizedOperation), counted per principal, most refused first
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
SELECT useridentity.arn AS principal,
       count(*) AS denied,
       count(DISTINCT eventname) AS distinct_calls,
       min(eventtime) AS first_denied,
       max(eventtime) AS last_denied
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND (errorcode LIKE 'AccessDenied%' OR errorcode LIKE '%UnauthorizedOperation')
GROUP BY useridentity.arn
ORDER BY denied DESC, principal
