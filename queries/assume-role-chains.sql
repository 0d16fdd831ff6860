-- name: assume-role-chains
-- description: Every role assumption, each a link from the caller (and the key it used) to the role and the temporary key issued; follow a chain by access_key_issued
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
SELECT eventtime, recipientaccountid, eventname, errorcode,
       useridentity.type AS caller_type,
       coalesce(useridentity.arn, useridentity.invokedby) AS caller,
       useridentity.sessioncontext.sessionissuer.arn AS caller_role,
       useridentity.accesskeyid AS access_key_used,
       json_extract_scalar(requestparameters, '$.roleArn') AS role_assumed,
       json_extract_scalar(requestparameters, '$.roleSessionName') AS session_name,
       json_extract_scalar(responseelements, '$.credentials.accessKeyId') AS access_key_issued,
       sourceipaddress, eventid
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND eventsource = 'sts.amazonaws.com'
  AND eventname IN ('AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity')
ORDER BY eventtime, eventid
