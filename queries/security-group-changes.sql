-- name: security-group-changes
-- description: Who created, changed or deleted one security group, and its rules
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
-- param: group_id   string     the security group's id (sg-0123456789abcdef0)
SELECT eventtime, recipientaccountid, awsregion, eventname, errorcode,
       useridentity.arn AS principal, sourceipaddress, requestparameters, eventid
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND eventsource = 'ec2.amazonaws.com'
  AND eventname IN ('CreateSecurityGroup', 'DeleteSecurityGroup',
                    'AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress',
                    'RevokeSecurityGroupIngress', 'RevokeSecurityGroupEgress',
                    'ModifySecurityGroupRules',
                    'UpdateSecurityGroupRuleDescriptionsIngress',
                    'UpdateSecurityGroupRuleDescriptionsEgress')
  AND ? IN (json_extract_scalar(requestparameters, '$.groupId'),
            json_extract_scalar(requestparameters, '$.ModifySecurityGroupRulesRequest.GroupId'),
            json_extract_scalar(responseelements, '$.groupId'))
ORDER BY eventtime, eventid
