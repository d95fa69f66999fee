# A CloudWatch dashboard per service (its API, its worker, its topic, its queue and DLQ) and the alarms
# an on-call SRE needs, all notifying one SNS topic.
#
# Sources: ALB target-group metrics for requests, latency percentiles and 4xx/5xx (exact per service);
# SNS/SQS metrics for events published (NumberOfMessagesPublished on the service's topic) and consumed
# (NumberOfMessagesDeleted: the consumer deletes a message once handled); ECS for CPU and memory; and the
# services' own embedded-metric-format records (namespace SpendSense, dimension Service) for what only
# the code knows: recommendation generation time, OpenAI latency and fallbacks.

locals {
  app_namespace = "SpendSense"
  tg            = { for svc, s in var.services : svc => ["TargetGroup", s.target_group_arn_suffix, "LoadBalancer", var.load_balancer_arn_suffix] }

  # Metrics only one service writes, by service.
  app_widgets = {
    recommender = [
      {
        type       = "metric"
        width      = 8
        height     = 6
        properties = {
          title   = "Recommendation generation time (ms)"
          region  = var.region
          view    = "timeSeries"
          period  = 60
          metrics = [
            for p in ["p50", "p95", "p99"] :
            [local.app_namespace, "RecommendationGenerationTime", "Service", "recommender", { stat = p, label = p }]
          ]
        }
      },
      {
        type       = "metric"
        width      = 8
        height     = 6
        properties = {
          title   = "OpenAI latency (ms)"
          region  = var.region
          view    = "timeSeries"
          period  = 60
          metrics = [
            for p in ["p50", "p95", "p99"] :
            [local.app_namespace, "OpenAILatency", "Service", "recommender", { stat = p, label = p }]
          ]
        }
      },
      {
        type       = "metric"
        width      = 8
        height     = 6
        properties = {
          title   = "OpenAI fallbacks (deterministic text used)"
          region  = var.region
          view    = "timeSeries"
          period  = 60
          stat    = "Sum"
          metrics = [[local.app_namespace, "OpenAIFallbacks", "Service", "recommender", { label = "fallbacks" }]]
        }
      },
    ]
  }

  widgets = {
    for svc, s in var.services : svc => concat(
      [
        {
          type       = "metric"
          width      = 8
          height     = 6
          properties = {
            title   = "Requests"
            region  = var.region
            view    = "timeSeries"
            period  = 60
            stat    = "Sum"
            metrics = [concat(["AWS/ApplicationELB", "RequestCount"], local.tg[svc], [{ label = "requests" }])]
          }
        },
        {
          type       = "metric"
          width      = 8
          height     = 6
          properties = {
            title   = "Latency p50 / p95 / p99 (s)"
            region  = var.region
            view    = "timeSeries"
            period  = 60
            metrics = [
              for p in ["p50", "p95", "p99"] :
              concat(["AWS/ApplicationELB", "TargetResponseTime"], local.tg[svc], [{ stat = p, label = p }])
            ]
            annotations = { horizontal = [{ label = "p95 alarm", value = var.thresholds.latency_p95_ms / 1000 }] }
          }
        },
        {
          type       = "metric"
          width      = 8
          height     = 6
          properties = {
            title   = "4xx / 5xx"
            region  = var.region
            view    = "timeSeries"
            period  = 60
            stat    = "Sum"
            metrics = [
              concat(["AWS/ApplicationELB", "HTTPCode_Target_4XX_Count"], local.tg[svc], [{ label = "4xx" }]),
              concat(["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"], local.tg[svc], [{ label = "5xx" }]),
            ]
          }
        },
        {
          type       = "metric"
          width      = 8
          height     = 6
          properties = {
            title  = "Events published / consumed"
            region = var.region
            view   = "timeSeries"
            period = 60
            stat   = "Sum"
            # A service without a topic or a queue has no such line (metric[3], the name, is null).
            metrics = [
              for metric in [
                ["AWS/SNS", "NumberOfMessagesPublished", "TopicName", s.topic_name, { label = "published" }],
                ["AWS/SQS", "NumberOfMessagesDeleted", "QueueName", s.queue_name, { label = "consumed" }],
              ] : metric if metric[3] != null
            ]
          }
        },
        {
          type       = "metric"
          width      = 8
          height     = 6
          properties = {
            title   = "Queue depth and age of oldest message"
            region  = var.region
            view    = "timeSeries"
            period  = 60
            stat    = "Maximum"
            metrics = [
              for metric in [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", s.queue_name, { label = "visible" }],
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", s.queue_name, { label = "oldest (s)", yAxis = "right" }],
              ] : metric if metric[3] != null
            ]
          }
        },
        {
          type       = "metric"
          width      = 8
          height     = 6
          properties = {
            title   = "DLQ depth"
            region  = var.region
            view    = "timeSeries"
            period  = 60
            stat    = "Maximum"
            metrics = [
              for metric in [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", s.dlq_name, { label = "dead letters" }],
              ] : metric if metric[3] != null
            ]
            annotations = { horizontal = [{ label = "alarm: not empty", value = 1 }] }
          }
        },
        {
          type       = "metric"
          width      = 12
          height     = 6
          properties = {
            title   = "CPU and memory (%)"
            region  = var.region
            view    = "timeSeries"
            period  = 60
            stat    = "Average"
            metrics = concat(
              [for process in [s.api_service_name, s.worker_service_name] : ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", process, { label = "${process} CPU" }]],
              [for process in [s.api_service_name, s.worker_service_name] : ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", process, { label = "${process} memory" }]],
            )
          }
        },
        {
          type       = "log"
          width      = 12
          height     = 6
          properties = {
            title  = "Errors in the logs"
            region = var.region
            query  = "SOURCE ${join(" | SOURCE ", [for g in s.log_group_names : "'${g}'"])} | fields @timestamp, event, service, correlation_id | filter level = 'error' | sort @timestamp desc | limit 50"
          }
        },
      ],
      try(local.app_widgets[svc], []),
    )
  }
}

resource "aws_cloudwatch_dashboard" "service" {
  for_each = var.services

  dashboard_name = "${var.name}-${each.key}"
  dashboard_body = jsonencode({
    # Drop the widgets with nothing to show (a service without a topic or a queue).
    widgets = [for w in local.widgets[each.key] : w if try(length(w.properties.metrics), 1) > 0]
  })
}

# --- Notifications ------------------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# --- Alarms per API -----------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "error_rate" {
  for_each = var.services

  alarm_name          = "${var.name}-${each.key}-error-rate"
  alarm_description   = "${each.key}: more than ${var.thresholds.error_rate_percent} % of requests answered 5xx"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.error_rate_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx rate (%)"
    return_data = true
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      period      = 60
      stat        = "Sum"
      dimensions  = { TargetGroup = each.value.target_group_arn_suffix, LoadBalancer = var.load_balancer_arn_suffix }
    }
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      period      = 60
      stat        = "Sum"
      dimensions  = { TargetGroup = each.value.target_group_arn_suffix, LoadBalancer = var.load_balancer_arn_suffix }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "latency_p95" {
  for_each = var.services

  alarm_name          = "${var.name}-${each.key}-latency-p95"
  alarm_description   = "${each.key}: p95 latency above ${var.thresholds.latency_p95_ms} ms"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { TargetGroup = each.value.target_group_arn_suffix, LoadBalancer = var.load_balancer_arn_suffix }
  extended_statistic  = "p95"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.latency_p95_ms / 1000 # TargetResponseTime is in seconds
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- Alarms per queue ---------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  for_each = { for svc, s in var.services : svc => s if s.dlq_name != null }

  alarm_name          = "${var.name}-${each.key}-dlq-not-empty"
  alarm_description   = "${each.key}: messages in ${each.value.dlq_name}; inspect and re-drive (`spendsense dlq`)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.dlq_name }
  statistic           = "Maximum"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- Alarms per process (API and worker) --------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "memory" {
  for_each = var.processes

  alarm_name          = "${var.name}-${each.key}-memory"
  alarm_description   = "${each.key}: memory above ${var.thresholds.memory_percent} % (out-of-memory kills next)"
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = var.cluster_name, ServiceName = each.value }
  statistic           = "Maximum"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.memory_percent
  evaluation_periods  = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- Database -----------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "database_connections" {
  alarm_name          = "${var.name}-database-connections"
  alarm_description   = "PostgreSQL connections above ${var.thresholds.db_connections_percent} % of max_connections (${var.database_max_connections})"
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = var.database_instance_id }
  statistic           = "Maximum"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = floor(var.database_max_connections * var.thresholds.db_connections_percent / 100)
  evaluation_periods  = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
