# The event bus, exactly as messaging/topology.py declares it (via generated/main.tf.json): a topic per
# producing service, a queue and a dead-letter queue per consuming service, and one subscription per
# (topic, queue) pair with the declared filter policy. Nothing here names a topic or queue itself.

data "aws_caller_identity" "current" {}

resource "aws_sns_topic" "this" {
  for_each = var.topics

  name              = each.value
  kms_master_key_id = var.kms_key_arn
}

# Publishing is limited to this account (and, through IAM, to the owning service's worker).
data "aws_iam_policy_document" "topic" {
  for_each = aws_sns_topic.this

  statement {
    sid       = "OwnAccountOnly"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"]
    resources = [each.value.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  for_each = aws_sns_topic.this

  arn    = each.value.arn
  policy = data.aws_iam_policy_document.topic[each.key].json
}

resource "aws_sqs_queue" "dlq" {
  for_each = var.queues

  name                              = each.value.dlq
  message_retention_seconds         = 1209600 # 14 days (the maximum) to inspect and re-drive, as provision() does
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "this" {
  for_each = var.queues

  name                              = each.value.name
  visibility_timeout_seconds        = each.value.visibility_timeout_s
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  # After max_receives failed receives a message moves to this queue's own DLQ.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = each.value.max_receives
  })
}

# A DLQ takes dead letters from its own queue only.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = var.queues

  queue_url            = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}

locals {
  topic_arn_by_name = { for service, topic in aws_sns_topic.this : topic.name => topic.arn }
  queue_by_name     = { for service, queue in var.queues : queue.name => service }
  subscriptions     = { for s in var.subscriptions : "${s.topic}=>${s.queue}" => s }
}

# SNS may deliver into a queue only from the topics the declaration subscribes it to.
data "aws_iam_policy_document" "queue" {
  for_each = var.queues

  statement {
    sid       = "FromSubscribedTopics"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for s in var.subscriptions : local.topic_arn_by_name[s.topic] if s.queue == each.value.name]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  for_each = var.queues

  queue_url = aws_sqs_queue.this[each.key].id
  policy    = data.aws_iam_policy_document.queue[each.key].json
}

resource "aws_sns_topic_subscription" "this" {
  for_each = local.subscriptions

  topic_arn            = local.topic_arn_by_name[each.value.topic]
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this[local.queue_by_name[each.value.queue]].arn
  raw_message_delivery = true # consumers read the envelope as sent, as with provision()
  filter_policy        = jsonencode(each.value.filter_policy)
  filter_policy_scope  = "MessageAttributes"

  depends_on = [aws_sqs_queue_policy.this]
}
