# Secrets whose values nobody but their owner should see: Terraform creates the entries (name, key,
# who may read them) and never a value, so the values stay out of the state. infra/README.md says how
# to put them in; an ECS task whose secret has no value yet fails to start with a clear error.

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Rotation of a signing key or a third-party API key is a manual, coordinated step (README, "Secrets"); there is no rotation Lambda for them.
  for_each = var.secrets

  name                    = "${var.name}/${each.key}"
  description             = each.value
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}
