# trailvault across an organization: the security account holds the archive, the keys, one
# notification queue per region and the worker on ECS; each member account gets a reader role
# and notifications from its CloudTrail buckets. Two member accounts in two regions here; see
# README.md for adding one.

locals {
  members = {
    member_a = var.member_a
    member_b = var.member_b
  }
  worker_queue_visibility = var.visibility_timeout_secs
}

# ---------------------------------------------------------------------------------------------
# Security account.

module "queue_home" {
  source    = "../../modules/queue"
  providers = { aws = aws.security }

  name                       = "trailvault-${var.home_region}"
  visibility_timeout_seconds = local.worker_queue_visibility
  source_buckets = [for m in local.members : {
    arn        = "arn:aws:s3:::${m.home_bucket}"
    account_id = m.account_id
  }]
}

module "queue_second" {
  source    = "../../modules/queue"
  providers = { aws = aws.security_second }

  name                       = "trailvault-${var.second_region}"
  visibility_timeout_seconds = local.worker_queue_visibility
  source_buckets = [for m in local.members : {
    arn        = "arn:aws:s3:::${m.second_bucket}"
    account_id = m.account_id
  }]
}

module "archive" {
  source    = "../../modules/archive"
  providers = { aws = aws.security }

  bucket_name                = var.archive_bucket
  organization_id            = var.organization_id
  retention                  = var.retention
  lifecycle_policy           = var.lifecycle_policy
  queue_arns                 = [module.queue_home.arn, module.queue_second.arn]
  dead_letter_queue_arns     = [module.queue_home.dead_letter_arn, module.queue_second.dead_letter_arn]
  worker_trusted_principals  = var.worker_principals
  auditor_trusted_principals = var.auditor_principals
  # Terraform owns the bucket's lifecycle and default retention; the worker only reports.
  reconcile = "report"
  alerts = {
    enabled       = var.alerts.enabled
    subscriptions = var.alerts.subscriptions
    event_bus_arn = var.alerts.event_bus_arn
  }

  force_destroy = var.force_destroy
  enforce_tls   = !local.emulator
  emulator      = local.emulator
}

# A small private network for the worker. In production, give the worker-ecs module your own
# subnets (with a NAT gateway or VPC endpoints for S3, SQS, KMS, STS, SSM, ECR and Logs).
resource "aws_vpc" "worker" {
  # checkov:skip=CKV2_AWS_11:An example network; enable flow logs in your own VPC
  provider             = aws.security
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = "trailvault" }
}

resource "aws_default_security_group" "worker" {
  provider = aws.security
  vpc_id   = aws_vpc.worker.id
}

resource "aws_subnet" "worker" {
  provider          = aws.security
  count             = 2
  vpc_id            = aws_vpc.worker.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index)
  availability_zone = "${var.home_region}${["a", "b"][count.index]}"
  tags              = { Name = "trailvault-private-${count.index}" }
}

module "worker" {
  source    = "../../modules/worker-ecs"
  providers = { aws = aws.security }

  image              = var.image
  task_role_arn      = module.archive.worker_role_arn
  vpc_id             = aws_vpc.worker.id
  subnet_ids         = aws_subnet.worker[*].id
  enable_autoscaling = var.enable_autoscaling

  config = {
    archive = {
      bucket      = module.archive.bucket
      region      = module.archive.region
      kms_key     = module.archive.kms_key_arn
      signing_key = module.archive.signing_key_arn
    }
    endpoint_url = var.endpoint
    queues = [
      { url = module.queue_home.url, region = var.home_region },
      { url = module.queue_second.url, region = var.second_region },
    ]
    accounts = [for key, m in local.members : {
      id                 = m.account_id
      name               = m.name
      reader_role_arn    = "arn:aws:iam::${m.account_id}:role/trailvault-reader"
      external_id        = var.external_ids[key]
      cleanup_after_days = m.cleanup_after_days
      buckets = [
        { name = m.home_bucket, region = var.home_region },
        { name = m.second_bucket, region = var.second_region },
      ]
    }]
    retention = merge(var.retention, {
      reconcile = "report"
      lifecycle = var.lifecycle_policy
    })
    worker = {
      visibility_timeout_secs = var.visibility_timeout_secs
    }
    alerts = var.alerts.enabled ? {
      sns_topic_arn = module.archive.alerts_topic_arn
      event_bus_arn = var.alerts.event_bus_arn
      builtin       = var.alerts.builtin
      suppress_secs = var.alerts.suppress_secs
      rules         = var.alerts.rules
    } : null
  }
}

# ---------------------------------------------------------------------------------------------
# Member accounts: a reader role each, and their buckets' notifications, one region at a time.

module "member_a" {
  source    = "../../modules/member"
  providers = { aws = aws.member_a }

  worker_role_arn = module.archive.worker_role_arn
  external_id     = var.external_ids.member_a
  trail_buckets   = [{ name = var.member_a.home_bucket }, { name = var.member_a.second_bucket }]
  notifications   = [{ bucket = var.member_a.home_bucket, queue_arn = module.queue_home.arn }]
  allow_cleanup   = var.member_a.cleanup_after_days != null
}

module "member_a_second" {
  source    = "../../modules/member-notification"
  providers = { aws = aws.member_a_second }

  bucket    = var.member_a.second_bucket
  queue_arn = module.queue_second.arn
}

module "member_b" {
  source    = "../../modules/member"
  providers = { aws = aws.member_b }

  worker_role_arn = module.archive.worker_role_arn
  external_id     = var.external_ids.member_b
  trail_buckets   = [{ name = var.member_b.home_bucket }, { name = var.member_b.second_bucket }]
  notifications   = [{ bucket = var.member_b.home_bucket, queue_arn = module.queue_home.arn }]
  allow_cleanup   = var.member_b.cleanup_after_days != null
}

module "member_b_second" {
  source    = "../../modules/member-notification"
  providers = { aws = aws.member_b_second }

  bucket    = var.member_b.second_bucket
  queue_arn = module.queue_second.arn
}

# ---------------------------------------------------------------------------------------------
# Athena over the archive, for the auditors: a table per member bucket (each keeps its own
# account's logs), the views cloudtrail and insights over them, a workgroup, and the auditor
# role's permissions for it. An organization trail's bucket would be one trail location with
# organization_id set and every account listed.

module "athena" {
  source    = "../../modules/athena"
  providers = { aws = aws.security }

  archive_bucket      = module.archive.bucket
  archive_kms_key_arn = module.archive.kms_key_arn
  trails = flatten([for key, m in local.members : [
    { name = "${key}_home", bucket = m.home_bucket, accounts = [m.account_id] },
    { name = "${key}_second", bucket = m.second_bucket, accounts = [m.account_id] },
  ]])
  regions           = [var.home_region, var.second_region]
  first_day         = var.athena_first_day
  auditor_role_name = module.archive.auditor_role_name

  force_destroy = var.force_destroy
  enforce_tls   = !local.emulator
}
