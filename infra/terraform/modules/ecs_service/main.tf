# One SpendSense process on ECS Fargate: its log group, its two IAM roles (execution: pull the image, read
# its secrets; task: exactly the AWS access the process needs), its task definition and, unless it is a
# one-off task (migrations), its ECS service with autoscaling. An API (var.http set) also gets a target
# group and the ALB listener rule that sends it the requests API Gateway marks with its service's name.

data "aws_partition" "current" {}

locals {
  cluster_name = element(split("/", var.cluster_arn), 1)
  is_http      = var.http != null
  # Same probe as the Dockerfile HEALTHCHECK and docker-compose.yml: slim images have no curl.
  health_check = var.health_path == "" ? null : {
    command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.port}${var.health_path}', timeout=3)"]
    interval    = 10
    timeout     = 5
    retries     = 3
    startPeriod = 20
  }

  container = {
    name      = var.name
    image     = var.image
    essential = true
    command   = length(var.command) > 0 ? var.command : null
    user      = "10001:10001" # the images' unprivileged user
    # Nothing is written outside /tmp (an ephemeral volume), so the image itself stays read-only.
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters        = { initProcessEnabled = true } # reaps children, forwards SIGTERM
    stopTimeout            = 30                            # graceful drain of in-flight requests/messages
    portMappings           = local.is_http ? [{ containerPort = var.port, protocol = "tcp" }] : []
    environment            = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    secrets                = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
    healthCheck            = local.health_check
    logConfiguration       = {
      logDriver = "awslogs"
      options   = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.region
        awslogs-stream-prefix = var.name
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name_prefix}/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# --- IAM ----------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Execution role: what ECS itself does before the process starts.
resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"] # cannot be scoped to a repository
    resources = ["*"]
  }
  statement {
    sid       = "PullOwnImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.repository_arn]
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  dynamic "statement" {
    for_each = length(var.secrets) > 0 ? [1] : []
    content {
      sid       = "ReadOwnSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = distinct(values(var.secrets))
    }
  }
  statement {
    sid       = "DecryptSecretsAndImage"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: the process's own AWS calls. Least privilege: its own topic, its own queue, listed buckets.
resource "aws_iam_role" "task" {
  name               = "${var.name_prefix}-${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

locals {
  publishes         = length(var.bus_access.publish_topic_arns) > 0
  consumes          = var.bus_access.consume_queue != null
  uses_s3           = length(var.bucket_arns.read) + length(var.bucket_arns.write) > 0
  pushes            = length(var.push_access.application_arns) > 0 && var.push_access.send
  deletes_endpoints = length(var.push_access.application_arns) > 0 && var.push_access.delete_endpoints
  has_task_permissions = (
    local.publishes || local.consumes || local.uses_s3 || var.bus_access.list_topics ||
    length(var.bus_access.lookup_queue_arns) > 0 || var.send_sms || local.pushes || local.deletes_endpoints
  )

  # An application arn:...:sns:REGION:ACCOUNT:app/PLATFORM/NAME has its endpoints at
  # arn:...:sns:REGION:ACCOUNT:endpoint/PLATFORM/NAME/ID.
  push_endpoint_arns = [for arn in var.push_access.application_arns : "${replace(arn, ":app/", ":endpoint/")}/*"]
  # SNS authorizes CreatePlatformApplication on arn:...:sns:REGION:ACCOUNT:app/ (the application has no
  # ARN before it exists), so creating is limited to the region and account, not to a name.
  push_application_scopes = distinct([
    for arn in var.push_access.application_arns : "${join(":", slice(split(":", arn), 0, 5))}:app/*"
  ])
}

data "aws_iam_policy_document" "task" {
  # SMS to phone numbers (auth's sign-in codes). SNS has no resource ARN for a phone number, so the
  # statement allows every target *except* topics: it cannot publish to any topic through this grant.
  dynamic "statement" {
    for_each = var.send_sms ? [1] : []
    content {
      sid           = "SendSmsToPhoneNumbersOnly"
      actions       = ["sns:Publish"]
      not_resources = ["arn:aws:sns:*:*:*"]
    }
  }
  dynamic "statement" {
    for_each = local.publishes ? [1] : []
    content {
      sid       = "PublishToOwnTopic"
      actions   = ["sns:Publish"]
      resources = var.bus_access.publish_topic_arns
    }
  }
  dynamic "statement" {
    for_each = local.consumes ? [var.bus_access.consume_queue] : []
    content {
      sid     = "ConsumeOwnQueue"
      actions = [
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
      ]
      resources = [statement.value.arn]
    }
  }
  dynamic "statement" {
    # The consumer moves a poison message to its DLQ itself, with the reason attached.
    for_each = local.consumes ? [var.bus_access.consume_queue] : []
    content {
      sid       = "DeadLetterToOwnDlq"
      actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = [statement.value.dlq_arn]
    }
  }
  dynamic "statement" {
    for_each = length(var.bus_access.lookup_queue_arns) > 0 ? [1] : []
    content {
      sid       = "ReadinessFindsOwnQueue"
      actions   = ["sqs:GetQueueUrl"]
      resources = var.bus_access.lookup_queue_arns
    }
  }
  dynamic "statement" {
    for_each = var.bus_access.list_topics ? [1] : []
    content {
      sid       = "ReadinessListsTopics"
      actions   = ["sns:ListTopics"] # account-wide by nature; reveals names only
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = length(var.bucket_arns.read) > 0 ? [1] : []
    content {
      sid       = "ReadBuckets"
      actions   = ["s3:GetObject", "s3:ListBucket"]
      resources = concat(var.bucket_arns.read, [for arn in var.bucket_arns.read : "${arn}/*"])
    }
  }
  dynamic "statement" {
    for_each = length(var.bucket_arns.write) > 0 ? [1] : []
    content {
      sid       = "WriteBuckets"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = [for arn in var.bucket_arns.write : "${arn}/*"]
    }
  }
  # Mobile push (adapters/push.py in the service). Listing has no resource-level permission: it reveals
  # application names and ARNs only, as sns:ListTopics does topic names.
  dynamic "statement" {
    for_each = local.pushes ? [1] : []
    content {
      sid       = "PushFindsApplications"
      actions   = ["sns:ListPlatformApplications"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = local.pushes ? [1] : []
    content {
      sid       = "PushCreatesApplications"
      actions   = ["sns:CreatePlatformApplication"]
      resources = local.push_application_scopes
    }
  }
  dynamic "statement" {
    # Its own two applications: update their credentials (a rotated key at the next start), register devices.
    for_each = local.pushes ? [1] : []
    content {
      sid       = "PushUsesOwnApplications"
      actions   = ["sns:SetPlatformApplicationAttributes", "sns:CreatePlatformEndpoint"]
      resources = var.push_access.application_arns
    }
  }
  dynamic "statement" {
    # Endpoints of its own applications only: re-enable a device's endpoint, publish to it.
    for_each = local.pushes ? [1] : []
    content {
      sid       = "PushToOwnEndpoints"
      actions   = ["sns:GetEndpointAttributes", "sns:SetEndpointAttributes", "sns:Publish"]
      resources = local.push_endpoint_arns
    }
  }
  dynamic "statement" {
    for_each = local.deletes_endpoints ? [1] : []
    content {
      sid       = "PushDeletesOwnEndpoints"
      actions   = ["sns:DeleteEndpoint"]
      resources = local.push_endpoint_arns
    }
  }
  dynamic "statement" {
    # Topics, queues and buckets are encrypted with the deployment key.
    for_each = local.publishes || local.consumes || local.uses_s3 ? [1] : []
    content {
      sid       = "UseDeploymentKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.bus_access.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  count = local.has_task_permissions ? 1 : 0

  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- Task definition ----------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name_prefix}-${var.name}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64" # the images are built for linux/amd64
  }

  volume {
    name = "tmp"
  }
}

# --- Load balancing (APIs only) -----------------------------------------------------------------------

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:Plain HTTP from the internal ALB to the task inside the VPC; TLS terminates at API Gateway.
  count = local.is_http ? 1 : 0

  # No name: AWS caps it at 32 characters; the Name tag says which service it is.
  port                 = var.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.http.vpc_id
  deregistration_delay = 30

  # Liveness, not readiness: a database hiccup must not make ECS replace every task.
  health_check {
    path                = var.health_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = { Name = "${var.name_prefix}-${var.name}" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener_rule" "service" {
  count = local.is_http ? 1 : 0

  listener_arn = var.http.listener_arn
  priority     = var.http.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }

  condition {
    http_header {
      http_header_name = var.http.header_name
      values           = [var.service]
    }
  }
}

resource "aws_lb_listener_rule" "paths" {
  count = try(length(var.http.path_patterns), 0) > 0 ? 1 : 0

  listener_arn = var.http.listener_arn
  priority     = var.http.priority + 1

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }

  condition {
    path_pattern {
      values = var.http.path_patterns
    }
  }
}

# --- Service and autoscaling --------------------------------------------------------------------------

resource "aws_ecs_service" "this" {
  count = var.create_service ? 1 : 0

  name             = var.name
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.autoscaling.min_tasks
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = local.is_http ? 60 : null
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true

  # A release whose tasks never get healthy rolls back by itself.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = local.is_http ? [1] : []
    content {
      target_group_arn = aws_lb_target_group.this[0].arn
      container_name   = var.name
      container_port   = var.port
    }
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling once running
  }

  depends_on = [aws_lb_listener_rule.service]
}

resource "aws_appautoscaling_target" "this" {
  count = var.create_service ? 1 : 0

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.this[0].name}"
  min_capacity       = var.autoscaling.min_tasks
  max_capacity       = var.autoscaling.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  count = var.create_service ? 1 : 0

  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.cpu_target
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_s
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "memory" {
  count = var.create_service ? 1 : 0

  name               = "${var.name}-memory"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.memory_target
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_s
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageMemoryUtilization"
    }
  }
}

# Workers: keep the backlog (visible messages per running task) near the target; with several
# target-tracking policies ECS scales out when any asks for it and in only when all agree.
resource "aws_appautoscaling_policy" "queue_backlog" {
  count = var.create_service && var.bus_access.scale_on_queue_name != null ? 1 : 0

  name               = "${var.name}-queue-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.backlog_per_task
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_s
    scale_out_cooldown = 60

    customized_metric_specification {
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = var.bus_access.scale_on_queue_name
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
              value = local.cluster_name
            }
            dimensions {
              name  = "ServiceName"
              value = var.name
            }
          }
        }
      }
      metrics {
        id          = "backlog"
        label       = "Visible messages per running task"
        expression  = "visible / IF(tasks > 0, tasks, 1)"
        return_data = true
      }
    }
  }
}
