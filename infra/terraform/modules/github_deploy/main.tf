# GitHub Actions' access to this deployment, through GitHub's OIDC tokens: no long-lived AWS keys.
# Two roles, each trusted for exactly one kind of job of one repository:
#   push   — build.yml on the main branch (subject repo:OWNER/REPO:ref:refs/heads/main): push images to this
#            deployment's ECR repositories, nothing else;
#   deploy — deploy.yml in this deployment's GitHub environment (repo:OWNER/REPO:environment:NAME, which
#            carries the manual approval for production): register task definitions, update this
#            deployment's ECS services, run its migrations task, and pass its task and execution roles
#            to ECS, nothing else.
# Both run infra/release.sh's calls only; each call is listed below with why.

data "aws_partition" "current" {}

locals {
  oidc_host = "token.actions.githubusercontent.com"
  provider_arn = (
    var.create_oidc_provider
    ? aws_iam_openid_connect_provider.github[0].arn
    : "arn:${data.aws_partition.current.partition}:iam::${var.account_id}:oidc-provider/${local.oidc_host}"
  )
  ecs_arn = "arn:${data.aws_partition.current.partition}:ecs:${var.region}:${var.account_id}"
}

# One per AWS account: the second deployment in an account sets create_oidc_provider = false.
resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # GitHub's published intermediate thumbprints. AWS no longer checks them for this issuer (it trusts
  # its own library of root CAs), but the API still requires a value on older providers.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

data "aws_iam_policy_document" "trust" {
  for_each = {
    push   = "repo:${var.repository}:ref:refs/heads/main"
    deploy = "repo:${var.repository}:environment:${var.environment}"
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals" # exact: no wildcard lets another branch, environment or fork in
      variable = "${local.oidc_host}:sub"
      values   = [each.value]
    }
  }
}

# --- push: ECR ----------------------------------------------------------------------------------------

resource "aws_iam_role" "push" {
  name                 = "${var.name}-github-push"
  description          = "GitHub Actions (build.yml on main of ${var.repository}): push images to ${var.name}'s ECR repositories."
  assume_role_policy   = data.aws_iam_policy_document.trust["push"].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "push" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"] # cannot be scoped to a repository
    resources = ["*"]
  }
  statement {
    sid = "PushToOwnRepositories"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:BatchGetImage",
    ]
    resources = var.repository_arns
  }
}

resource "aws_iam_role_policy" "push" {
  name   = "push-images"
  role   = aws_iam_role.push.id
  policy = data.aws_iam_policy_document.push.json
}

# --- deploy: ECS --------------------------------------------------------------------------------------

resource "aws_iam_role" "deploy" {
  name                 = "${var.name}-github-deploy"
  description          = "GitHub Actions (deploy.yml in environment ${var.environment} of ${var.repository}): release to ${var.name}'s ECS services."
  assume_role_policy   = data.aws_iam_policy_document.trust["deploy"].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "deploy" {
  statement {
    # Neither call can be scoped to a resource (IAM has no resource type for them). Registering a
    # revision runs nothing: only UpdateService and RunTask below, on this deployment, start tasks.
    sid       = "TaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }
  statement {
    sid       = "OwnServices"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = [for service in var.service_names : "${local.ecs_arn}:service/${var.cluster_name}/${service}"]
  }
  statement {
    sid       = "RunMigrations"
    actions   = ["ecs:RunTask"]
    resources = ["${local.ecs_arn}:task-definition/${var.migrate_task_family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }
  statement {
    sid       = "FollowOwnTasks"
    actions   = ["ecs:DescribeTasks"]
    resources = ["${local.ecs_arn}:task/${var.cluster_name}/*"]
  }
  statement {
    sid       = "PassOwnTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.task_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid       = "CheckImagesExist"
    actions   = ["ecr:DescribeImages"]
    resources = var.repository_arns
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "release"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
