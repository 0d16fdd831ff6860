# trailvault's worker on ECS Fargate: the service (deployment circuit breaker, scaled on the
# queues' backlog per task), its task definition (non-root, read-only root filesystem, health
# check on /healthz), the configuration in an SSM SecureString, and a KMS-encrypted log group.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account    = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  cluster    = var.cluster_arn == null ? aws_ecs_cluster.this[0].arn : var.cluster_arn
  cluster_id = element(split("/", local.cluster), length(split("/", local.cluster)) - 1)
  config     = templatefile("${path.module}/config.toml.tftpl", { c = var.config })
  # The configuration is sensitive for its ExternalIds; the grace period and the queue names
  # are not, and Terraform refuses sensitive values where they are used.
  # The stop timeout must outlast the worker's grace period (Fargate allows 120 s).
  stop_timeout = nonsensitive(min(120, coalesce(var.config.worker.shutdown_grace_secs, 25) + 5))
  queue_names  = nonsensitive([for q in var.config.queues : element(split("/", q.url), length(split("/", q.url)) - 1)])
}

resource "aws_ecs_cluster" "this" {
  count = var.cluster_arn == null ? 1 : 0
  name  = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# The configuration: in SSM, encrypted, injected by ECS; never in the task definition.

resource "aws_kms_key" "task" {
  count                   = var.log_kms_key_arn == null ? 1 : 0
  description             = "trailvault worker: its log group and its configuration parameter"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.task_key.json
  tags                    = var.tags
}

data "aws_iam_policy_document" "task_key" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account administers it
  # checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/ecs/${var.name}"]
    }
  }
}

locals {
  task_key = var.log_kms_key_arn == null ? aws_kms_key.task[0].arn : var.log_kms_key_arn
}

resource "aws_ssm_parameter" "config" {
  name        = "/${var.name}/config"
  description = "trailvault's configuration (TOML), handed to the worker as TRAILVAULT_CONFIG_TOML"
  type        = "SecureString"
  key_id      = local.task_key
  value       = local.config
  tier        = length(local.config) > 4096 ? "Advanced" : "Standard"
  tags        = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.task_key
  tags              = var.tags
}

# ---------------------------------------------------------------------------------------------
# The execution role: pull the image, write logs, read the configuration. Nothing else.

data "aws_iam_policy_document" "execution_trust" {
  statement {
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

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS starts the trailvault worker: image, logs, configuration"
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  # checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken has no resource to scope it to
  # checkov:skip=CKV_AWS_111:ecr:GetAuthorizationToken has no resource to scope it to
  statement {
    sid       = "RegistryToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = ["arn:${local.partition}:ecr:*:*:repository/*"]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "Configuration"
    actions   = ["ssm:GetParameters"]
    resources = [aws_ssm_parameter.config.arn]
  }

  statement {
    sid       = "DecryptConfiguration"
    actions   = ["kms:Decrypt"]
    resources = [local.task_key]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-trailvault"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---------------------------------------------------------------------------------------------
# The task and the service.

resource "aws_security_group" "this" {
  # checkov:skip=CKV_AWS_382:The worker calls AWS APIs over HTTPS; narrow with VPC endpoints and security_group_ids
  count       = length(var.security_group_ids) == 0 ? 1 : 0
  name        = "${var.name}-worker"
  description = "trailvault worker: HTTPS out to AWS APIs, nothing in"
  vpc_id      = var.vpc_id

  egress {
    description = "AWS APIs (S3, SQS, KMS, STS) over HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name                   = "trailvault"
    image                  = var.image
    essential              = true
    command                = ["run"]
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    stopTimeout            = local.stop_timeout
    portMappings           = [{ containerPort = 9090, protocol = "tcp" }]
    environment = [
      { name = "TRAILVAULT_LOG_FORMAT", value = "json" },
    ]
    secrets = [
      { name = "TRAILVAULT_CONFIG_TOML", valueFrom = aws_ssm_parameter.config.arn },
    ]
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/trailvault", "healthcheck"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.this.name
        "awslogs-region"        = local.region
        "awslogs-stream-prefix" = "worker"
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = local.cluster
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.min_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = length(var.security_group_ids) > 0 ? var.security_group_ids : aws_security_group.this[*].id
    assign_public_ip = var.assign_public_ip
  }

  lifecycle {
    # The autoscaling policy owns the count. The emulator reports a rebalancing setting it
    # was never given and forgets managed tags; both are constants here.
    ignore_changes = [desired_count, availability_zone_rebalancing, enable_ecs_managed_tags]
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Autoscaling: visible notifications across the queues, per running task.

resource "aws_appautoscaling_target" "this" {
  count              = var.enable_autoscaling ? 1 : 0
  service_namespace  = "ecs"
  resource_id        = "service/${local.cluster_id}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "backlog" {
  count              = var.enable_autoscaling ? 1 : 0
  name               = "${var.name}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_task
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      dynamic "metrics" {
        for_each = local.queue_names
        content {
          id          = "q${metrics.key}"
          return_data = false
          metric_stat {
            stat = "Sum"
            metric {
              namespace   = "AWS/SQS"
              metric_name = "ApproximateNumberOfMessagesVisible"
              dimensions {
                name  = "QueueName"
                value = metrics.value
              }
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = local.cluster_id
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.this.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Visible notifications per running task"
        expression  = "(${join(" + ", [for i, _ in local.queue_names : "q${i}"])}) / tasks"
        return_data = true
      }
    }
  }
}
