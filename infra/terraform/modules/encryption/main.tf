# The deployment's customer-managed KMS key. IAM policies in the account decide who may use it (first
# statement); the AWS services that encrypt on nobody's behalf (CloudWatch Logs, SNS delivering to
# encrypted queues, CloudFront reading the web app, CloudWatch alarms publishing to the encrypted alarm
# topic) are named explicitly.

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key only; administration stays with the account's IAM policies.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key only; writers are limited by the conditions below and by IAM.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means this key only.
  statement {
    sid       = "AccountIamPolicies"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${var.account_id}:log-group:*"]
    }
  }

  # SNS delivering a topic's messages into the encrypted queues.
  statement {
    sid       = "SnsToEncryptedQueues"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }

  # CloudFront (origin access control) reading the web app's objects from the frontend bucket, which S3
  # decrypts on its behalf. Any distribution of this account, but only objects of that bucket: which
  # distribution may read them at all is the bucket policy's (modules/web), and naming it here would make
  # the key, and so nearly everything, wait for CloudFront.
  statement {
    sid       = "CloudFrontReadsFrontendBucket"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "AWS:SourceArn"
      values   = ["arn:*:cloudfront::${var.account_id}:distribution/*"]
    }
    condition {
      # With S3 bucket keys the context is the bucket's ARN, without them the object's.
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.frontend_bucket_arn, "${var.frontend_bucket_arn}/*"]
    }
  }

  # CloudWatch alarms publishing to the encrypted alarm topic.
  statement {
    sid       = "CloudWatchAlarmsToEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: encrypts logs, queues, topics, database, cache, buckets, secrets, images"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
