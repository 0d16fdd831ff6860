# A member account's side of trailvault: the reader role the worker assumes (with an
# ExternalId), read-only on the account's CloudTrail buckets, and the buckets' notifications
# to the central queue of their region.

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  buckets   = [for b in var.trail_buckets : "arn:${local.partition}:s3:::${b.name}"]
  keys      = compact([for b in var.trail_buckets : b.kms_key_arn])
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.worker_role_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "reader" {
  name                 = var.role_name
  description          = "trailvault reads this account's CloudTrail files to archive them centrally"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "read" {
  statement {
    sid       = "ListTrailBuckets"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"]
    resources = local.buckets
  }

  statement {
    sid       = "ReadTrailObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [for b in local.buckets : "${b}/*"]
  }

  # Organization discovery finds the account's trail buckets from its trails. DescribeTrails
  # also returns the shadow copies of other regions' trails, whose ARNs are not known here.
  statement {
    sid       = "FindTrailBuckets"
    actions   = ["cloudtrail:DescribeTrails"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(local.keys) > 0 ? [1] : []
    content {
      sid       = "DecryptTrailLogs"
      actions   = ["kms:Decrypt"]
      resources = local.keys
    }
  }

  dynamic "statement" {
    for_each = var.allow_cleanup ? [1] : []
    content {
      sid       = "CleanUpArchivedFiles"
      actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
      resources = [for b in local.buckets : "${b}/*"]
    }
  }
}

resource "aws_iam_role_policy" "read" {
  name   = "read-cloudtrail"
  role   = aws_iam_role.reader.id
  policy = data.aws_iam_policy_document.read.json
}

module "notification" {
  source   = "../member-notification"
  for_each = { for n in var.notifications : n.bucket => n }

  bucket    = each.value.bucket
  queue_arn = each.value.queue_arn
}
