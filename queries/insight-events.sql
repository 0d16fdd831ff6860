-- name: insight-events
-- description: CloudTrail Insights events (unusual call or error rates), start and end, with the rates against the baseline
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
SELECT eventtime, recipientaccountid, awsregion,
       insightdetails.state AS state,
       insightdetails.insighttype AS insight_type,
       insightdetails.eventsource AS eventsource,
       insightdetails.eventname AS eventname,
       insightdetails.errorcode AS errorcode,
       insightdetails.insightcontext.statistics.baseline.average AS baseline_per_minute,
       insightdetails.insightcontext.statistics.insight.average AS insight_per_minute,
       sharedeventid, eventid
FROM insights
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
ORDER BY eventtime, eventid
