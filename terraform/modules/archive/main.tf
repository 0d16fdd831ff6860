# The security account's side of trailvault: the archive bucket (Object Lock, SSE-KMS, its
# lifecycle), its access-log bucket, the archive and manifest-signing KMS keys, and the
# worker's and auditors' roles with exactly the calls each makes.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account    = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  root       = "arn:${local.partition}:iam::${local.account}:root"
  log_bucket = coalesce(var.access_log_bucket_name, "${var.bucket_name}-access-logs")
  bucket_arn = "arn:${local.partition}:s3:::${var.bucket_name}"
  readers    = "arn:${local.partition}:iam::*:role/${var.reader_role_name}"
  lifecycle  = var.lifecycle_policy
  # Alerts: a topic of the module's own unless topic = false; a bus only ever given.
  alerts       = var.alerts.enabled
  alerts_topic = var.alerts.enabled && var.alerts.topic
  alerts_bus   = var.alerts.enabled ? var.alerts.event_bus_arn : null
  has_retention_rule = (length(local.lifecycle.transitions) > 0
    || local.lifecycle.expiration_days != null
    || local.lifecycle.noncurrent_expiration_days != null
  || coalesce(local.lifecycle.abort_incomplete_multipart_days, 0) > 0)
}

# ---------------------------------------------------------------------------------------------
# Roles. The keys' policies name them, so they come first.

data "aws_iam_policy_document" "worker_trust" {
  dynamic "statement" {
    for_each = var.emulator ? [] : [1]
    content {
      sid     = "EcsTasks"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = ["ecs-tasks.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.worker_trusted_principals) > 0 ? [1] : []
    content {
      sid     = "TrustedPrincipals"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = var.worker_trusted_principals
      }
    }
  }
}

resource "aws_iam_role" "worker" {
  name                 = "${var.name}-worker"
  description          = "trailvault's archive worker: reads the notification queues, assumes the member accounts' reader roles, writes the archive"
  assume_role_policy   = data.aws_iam_policy_document.worker_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role" "auditor" {
  count              = length(var.auditor_trusted_principals) > 0 ? 1 : 0
  name               = "${var.name}-auditor"
  description        = "Read-only access to the trailvault archive, for `trailvault verify`"
  assume_role_policy = data.aws_iam_policy_document.auditor_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "auditor_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.auditor_trusted_principals) > 0 ? var.auditor_trusted_principals : [local.root]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Keys.

data "aws_iam_policy_document" "archive_key" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.root]
    }
  }

  statement {
    sid       = "WorkerEncrypts"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.worker.arn]
    }
  }

  dynamic "statement" {
    for_each = aws_iam_role.auditor
    content {
      sid       = "AuditorsDecrypt"
      actions   = ["kms:Decrypt", "kms:DescribeKey"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
    }
  }
}

resource "aws_kms_key" "archive" {
  description             = "trailvault archive: every archived CloudTrail file (SSE-KMS)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.archive_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "archive" {
  name          = "alias/${var.name}-archive"
  target_key_id = aws_kms_key.archive.key_id
}

data "aws_iam_policy_document" "signing_key" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.root]
    }
  }

  statement {
    sid       = "WorkerSignsManifests"
    actions   = ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.worker.arn]
    }
  }

  dynamic "statement" {
    for_each = aws_iam_role.auditor
    content {
      sid       = "AuditorsVerify"
      actions   = ["kms:GetPublicKey", "kms:Verify", "kms:DescribeKey"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
    }
  }
}

resource "aws_kms_key" "signing" {
  # checkov:skip=CKV_AWS_7:KMS does not rotate asymmetric keys; a new key starts a new manifest chain
  description              = "trailvault archive: signs the archive's manifests (RSASSA_PKCS1_V1_5_SHA_256)"
  key_usage                = "SIGN_VERIFY"
  customer_master_key_spec = "RSA_2048"
  deletion_window_in_days  = 30
  policy                   = data.aws_iam_policy_document.signing_key.json
  tags                     = var.tags
}

resource "aws_kms_alias" "signing" {
  name          = "alias/${var.name}-manifest-signing"
  target_key_id = aws_kms_key.signing.key_id
}

# The auditors' own signing key, for verification reports (`trailvault verify --report --sign`).
# Never the manifest key: a report signature must not be able to stand in for a manifest's, and
# the worker, which signs manifests, has no use of this one.
data "aws_iam_policy_document" "report_signing_key" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.root]
    }
  }

  dynamic "statement" {
    for_each = aws_iam_role.auditor
    content {
      sid       = "AuditorsSignReports"
      actions   = ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
    }
  }
}

resource "aws_kms_key" "report_signing" {
  # checkov:skip=CKV_AWS_7:KMS does not rotate asymmetric keys; reports signed before a new key keep their .sig naming the old one
  count                    = length(aws_iam_role.auditor)
  description              = "trailvault archive: auditors sign verification reports (RSASSA_PKCS1_V1_5_SHA_256)"
  key_usage                = "SIGN_VERIFY"
  customer_master_key_spec = "RSA_2048"
  deletion_window_in_days  = 30
  policy                   = data.aws_iam_policy_document.report_signing_key.json
  tags                     = var.tags
}

resource "aws_kms_alias" "report_signing" {
  count         = length(aws_kms_key.report_signing)
  name          = "alias/${var.name}-report-signing"
  target_key_id = aws_kms_key.report_signing[0].key_id
}

# ---------------------------------------------------------------------------------------------
# The archive bucket.

resource "aws_s3_bucket" "archive" {
  # checkov:skip=CKV_AWS_144:Cross-region replication of a locked archive is a deployment choice (it needs a second locked bucket and key), not a default
  # checkov:skip=CKV2_AWS_62:Nothing consumes the archive's own events; the worker writes it
  bucket              = var.bucket_name
  object_lock_enabled = true
  force_destroy       = var.force_destroy
  tags                = var.tags
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    default_retention {
      mode  = var.retention.mode
      years = var.retention.years
      days  = var.retention.days
    }
  }
  depends_on = [aws_s3_bucket_versioning.archive]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.archive.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "archive" {
  bucket        = aws_s3_bucket.archive.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "${var.bucket_name}/"
  # S3 checks that the target bucket lets the logging service write.
  depends_on = [aws_s3_bucket_policy.logs]
}

# The same two rules trailvault's retention policy makes (src/retention/bucket.rs), so that
# `trailvault retention plan` finds nothing to change.
resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  count  = local.has_retention_rule || local.lifecycle.expired_delete_markers ? 1 : 0
  bucket = aws_s3_bucket.archive.id

  dynamic "rule" {
    for_each = local.has_retention_rule ? [1] : []
    content {
      id     = "trailvault-retention"
      status = "Enabled"
      filter {}

      dynamic "transition" {
        for_each = local.lifecycle.transitions
        content {
          days          = transition.value.days
          storage_class = transition.value.storage_class
        }
      }

      dynamic "expiration" {
        for_each = local.lifecycle.expiration_days == null ? [] : [local.lifecycle.expiration_days]
        content {
          days = expiration.value
        }
      }

      dynamic "noncurrent_version_expiration" {
        for_each = local.lifecycle.noncurrent_expiration_days == null ? [] : [local.lifecycle.noncurrent_expiration_days]
        content {
          noncurrent_days = noncurrent_version_expiration.value
        }
      }

      dynamic "abort_incomplete_multipart_upload" {
        for_each = coalesce(local.lifecycle.abort_incomplete_multipart_days, 0) > 0 ? [local.lifecycle.abort_incomplete_multipart_days] : []
        content {
          days_after_initiation = abort_incomplete_multipart_upload.value
        }
      }
    }
  }

  dynamic "rule" {
    for_each = local.lifecycle.expired_delete_markers ? [1] : []
    content {
      id     = "trailvault-delete-markers"
      status = "Enabled"
      filter {}
      expiration {
        expired_object_delete_marker = true
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.archive]
}

data "aws_iam_policy_document" "archive_bucket" {
  dynamic "statement" {
    for_each = var.enforce_tls ? [1] : []
    content {
      sid       = "DenyInsecureTransport"
      effect    = "Deny"
      actions   = ["s3:*"]
      resources = [local.bucket_arn, "${local.bucket_arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["false"]
      }
    }
  }

  # An upload that names an encryption must name the archive key; one that names none gets
  # the bucket's default, which is the archive key.
  dynamic "statement" {
    for_each = var.enforce_tls ? [1] : []
    content {
      sid       = "DenyOtherEncryption"
      effect    = "Deny"
      actions   = ["s3:PutObject"]
      resources = ["${local.bucket_arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
      condition {
        test     = "Null"
        variable = "s3:x-amz-server-side-encryption"
        values   = ["false"]
      }
      condition {
        test     = "StringNotEquals"
        variable = "s3:x-amz-server-side-encryption"
        values   = ["aws:kms"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.enforce_tls ? [1] : []
    content {
      sid       = "DenyOtherKeys"
      effect    = "Deny"
      actions   = ["s3:PutObject"]
      resources = ["${local.bucket_arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
      condition {
        test     = "Null"
        variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        values   = ["false"]
      }
      condition {
        test     = "StringNotEquals"
        variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        values   = [aws_kms_key.archive.arn]
      }
    }
  }

  # Nobody deletes from the archive, not even a delete marker; lifecycle expiry is not a
  # request and is not affected. (A test stack that must be destroyable goes without.)
  dynamic "statement" {
    for_each = var.force_destroy ? [] : [1]
    content {
      sid       = "DenyDeletes"
      effect    = "Deny"
      actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]
      resources = ["${local.bucket_arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  count      = var.enforce_tls || !var.force_destroy ? 1 : 0
  bucket     = aws_s3_bucket.archive.id
  policy     = data.aws_iam_policy_document.archive_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.archive]
}

# ---------------------------------------------------------------------------------------------
# The access-log bucket.

resource "aws_s3_bucket" "logs" {
  # checkov:skip=CKV_AWS_18:This is the access-log bucket; logging it into itself would loop
  # checkov:skip=CKV_AWS_144:Access logs are operational, not evidence; no replica needed
  # checkov:skip=CKV_AWS_145:S3 server access logs can only be delivered to an SSE-S3 bucket
  # checkov:skip=CKV2_AWS_62:Nothing consumes the access logs' events
  bucket        = local.log_bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  dynamic "statement" {
    for_each = var.enforce_tls ? [1] : []
    content {
      sid       = "DenyInsecureTransport"
      effect    = "Deny"
      actions   = ["s3:*"]
      resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["false"]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# ---------------------------------------------------------------------------------------------
# Alerts: the topic the worker publishes to, under a key of its own.

data "aws_iam_policy_document" "alerts_key" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.root]
    }
  }

  # A publisher to an encrypted topic needs both (AWS: "Managing Amazon SNS encryption keys",
  # "Allow a user to send messages to a topic with SSE").
  statement {
    sid       = "WorkerPublishes"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.worker.arn]
    }
  }

  # SNS delivering to an SQS queue encrypted with this key (AWS: "Setting up Amazon SNS topic
  # encryption with encrypted Amazon SQS queue subscription", the statement as AWS gives it).
  # A subscribed queue under a key of its own needs the same statement in that key's policy.
  statement {
    sid       = "SnsDeliversToEncryptedQueues"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "alerts" {
  count                   = local.alerts_topic ? 1 : 0
  description             = "trailvault alerts: the alerts topic's messages (SNS server-side encryption)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alerts_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "alerts" {
  count         = length(aws_kms_key.alerts)
  name          = "alias/${var.name}-alerts"
  target_key_id = aws_kms_key.alerts[0].key_id
}

resource "aws_sns_topic" "alerts" {
  count             = local.alerts_topic ? 1 : 0
  name              = "${var.name}-alerts"
  display_name      = "trailvault"
  kms_master_key_id = aws_kms_key.alerts[0].arn
  tags              = var.tags
}

data "aws_iam_policy_document" "alerts_topic" {
  count = length(aws_sns_topic.alerts)

  statement {
    sid       = "WorkerPublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts[0].arn]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.worker.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  count  = length(aws_sns_topic.alerts)
  arn    = aws_sns_topic.alerts[0].arn
  policy = data.aws_iam_policy_document.alerts_topic[0].json
}

# By position, not by endpoint: an endpoint may be another resource's ARN, unknown at plan.
# An SQS queue must let SNS send (its policy: sns.amazonaws.com, sqs:SendMessage, aws:SourceArn
# the topic); an email address must confirm before it receives anything.
resource "aws_sns_topic_subscription" "alerts" {
  count     = local.alerts_topic ? length(var.alerts.subscriptions) : 0
  topic_arn = aws_sns_topic.alerts[0].arn
  protocol  = var.alerts.subscriptions[count.index].protocol
  endpoint  = var.alerts.subscriptions[count.index].endpoint
}

# ---------------------------------------------------------------------------------------------
# What the worker may do: exactly the calls trailvault makes.

data "aws_iam_policy_document" "worker" {
  # checkov:skip=CKV_AWS_356:Only with var.emulator (off by default): the emulator matches KMS permissions against "*"
  statement {
    sid = "Notifications"
    # AWS authorises the batch calls as DeleteMessage and ChangeMessageVisibility; the
    # emulator checks them under their own names, so both are listed.
    actions = [
      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch",
      "sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch",
      "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    ]
    resources = var.queue_arns
  }

  dynamic "statement" {
    for_each = length(var.dead_letter_queue_arns) > 0 ? [1] : []
    content {
      sid       = "DeadLetterDepth"
      actions   = ["sqs:GetQueueAttributes"]
      resources = var.dead_letter_queue_arns
    }
  }

  statement {
    sid = "ArchiveBucket"
    actions = concat(
      [
        "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration", "s3:GetLifecycleConfiguration", "s3:ListBucketMultipartUploads",
      ],
      var.reconcile == "enforce" ? ["s3:PutLifecycleConfiguration", "s3:PutBucketObjectLockConfiguration"] : [],
    )
    resources = [aws_s3_bucket.archive.arn]
  }

  statement {
    sid = "ArchiveObjects"
    actions = [
      "s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObjectRetention",
      "s3:GetObjectRetention", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.archive.arn}/*"]
  }

  statement {
    sid       = "ArchiveKey"
    actions   = ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
    resources = [aws_kms_key.archive.arn]
  }

  statement {
    sid       = "ManifestSigning"
    actions   = ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"]
    resources = [aws_kms_key.signing.arn]
  }

  # Alerts: publish a file's alerts, then mark its archived version (trailvault-alerts=
  # published) so that a redelivered notification does not publish them again.
  dynamic "statement" {
    for_each = aws_sns_topic.alerts
    content {
      sid       = "PublishAlerts"
      actions   = ["sns:Publish"]
      resources = [statement.value.arn]
    }
  }

  dynamic "statement" {
    for_each = aws_kms_key.alerts
    content {
      sid       = "AlertsKey"
      actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      resources = [statement.value.arn]
    }
  }

  dynamic "statement" {
    for_each = local.alerts_bus == null ? [] : [local.alerts_bus]
    content {
      sid       = "AlertEvents"
      actions   = ["events:PutEvents"]
      resources = [statement.value]
    }
  }

  # The emulator matches SNS and EventBridge permissions, as KMS's, only against "*", and
  # authorizes PublishBatch as an action of its own (AWS authorizes it as sns:Publish).
  dynamic "statement" {
    for_each = var.emulator && local.alerts ? [1] : []
    content {
      sid       = "AlertsInTheEmulator"
      actions   = concat(local.alerts_topic ? ["sns:Publish", "sns:PublishBatch"] : [], local.alerts_bus == null ? [] : ["events:PutEvents"])
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.alerts ? [1] : []
    content {
      sid = "AlertsPublishedTag"
      actions = [
        "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging", "s3:PutObjectVersionTagging",
      ]
      resources = ["${aws_s3_bucket.archive.arn}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.emulator ? [1] : []
    content {
      sid       = "KeysInTheEmulator"
      actions   = ["kms:DescribeKey", "kms:Sign", "kms:GetPublicKey"]
      resources = ["*"]
    }
  }

  # The reader role's name is the same in every account, so the ARN alone would let the worker
  # assume a role of that name in any account of any organization: one an outsider made to
  # trust it would have it read (and archive) what the outsider chooses. The organization
  # bounds it.
  statement {
    sid       = "ReadMemberBuckets"
    actions   = ["sts:AssumeRole"]
    resources = [local.readers]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceOrgID"
      values   = [var.organization_id]
    }
  }

  dynamic "statement" {
    for_each = var.organizations_role_arn == null ? [] : [1]
    content {
      sid       = "ListOrganization"
      actions   = ["sts:AssumeRole"]
      resources = [var.organizations_role_arn]
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "trailvault-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

data "aws_iam_policy_document" "auditor" {
  # checkov:skip=CKV_AWS_356:Only with var.emulator (off by default): the emulator matches KMS permissions against "*"
  statement {
    sid       = "ListArchive"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.archive.arn]
  }

  statement {
    sid       = "ReadArchive"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.archive.arn}/*"]
  }

  statement {
    sid       = "DecryptArchive"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [aws_kms_key.archive.arn]
  }

  statement {
    sid       = "ManifestKey"
    actions   = ["kms:GetPublicKey", "kms:DescribeKey"]
    resources = [aws_kms_key.signing.arn]
  }

  dynamic "statement" {
    for_each = aws_kms_key.report_signing
    content {
      sid       = "ReportKey"
      actions   = ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"]
      resources = [statement.value.arn]
    }
  }

  dynamic "statement" {
    for_each = var.emulator ? [1] : []
    content {
      sid       = "KeysInTheEmulator"
      actions   = ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"]
      resources = ["*"]
    }
  }

  statement {
    # ListPublicKeys has no resource to scope it to.
    sid       = "CloudTrailKeys"
    actions   = ["cloudtrail:ListPublicKeys"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "auditor" {
  count  = length(aws_iam_role.auditor)
  name   = "trailvault-auditor"
  role   = aws_iam_role.auditor[0].id
  policy = data.aws_iam_policy_document.auditor.json
}
