-- name: bucket-policy-changes
-- description: Who changed one S3 bucket's policy, ACL or public access block
-- param: from       timestamp  start of the window, inclusive: eventtime as ISO-8601 UTC text (2026-01-01T00:00:00Z; a prefix such as 2026-01-01 works)
-- param: to         timestamp  end of the window, exclusive, in the same form (2026-02-01T00:00:00Z)
-- param: first_day  day        first delivery-date folder read, yyyy/MM/dd: the day of from, one day earlier for clock skew (2025/12/31)
-- param: last_day   day        last delivery-date folder read, yyyy/MM/dd: the day of to, one day later for late delivery (2026/02/01)
-- param: bucket     string     the bucket's name (acme-prod-data)
SELECT eventtime, recipientaccountid, awsregion, eventname, errorcode,
       useridentity.arn AS principal, sourceipaddress, requestparameters, eventid
FROM cloudtrail
WHERE eventtime >= ?
  AND eventtime < ?
  AND "date" BETWEEN ? AND ?
  AND eventsource = 's3.amazonaws.com'
  AND eventname IN ('PutBucketPolicy', 'DeleteBucketPolicy', 'PutBucketAcl',
                    'PutBucketPublicAccessBlock', 'DeleteBucketPublicAccessBlock',
                    'PutBucketOwnershipControls', 'DeleteBucketOwnershipControls')
  AND json_extract_scalar(requestparameters, '$.bucketName') = ?
ORDER BY eventtime, eventid
