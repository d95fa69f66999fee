# The public API: an API Gateway HTTP API whose routes are the local gateway's route table (ROUTES,
# generated), each sent through a VPC link to the internal ALB with a header naming its service.
# Authentication stays in the services (FastAPI verifies the JWTs), as in the local stack.

resource "aws_apigatewayv2_api" "this" {
  name          = "${var.name}-api"
  protocol_type = "HTTP"
  description   = "SpendSense public API (${var.name}); routes generated from the local gateway's table"

  cors_configuration {
    allow_origins     = var.cors_allow_origins
    allow_methods     = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    allow_headers     = ["authorization", "content-type", "x-correlation-id", "idempotency-key"]
    expose_headers    = ["x-correlation-id", "x-request-id"]
    allow_credentials = length(var.cors_allow_origins) > 0
    max_age           = 600
  }
}

resource "aws_apigatewayv2_vpc_link" "this" {
  name               = "${var.name}-vpc-link"
  subnet_ids         = var.subnet_ids
  security_group_ids = [var.security_group_id]
}

# One integration per service: same listener, different header. The ALB's rule for that header
# forwards to the service's target group; the path is passed through unchanged.
resource "aws_apigatewayv2_integration" "service" {
  for_each = toset(var.services)

  api_id                 = aws_apigatewayv2_api.this.id
  description            = "SpendSense ${each.key} service"
  integration_type       = "HTTP_PROXY"
  integration_method     = "ANY"
  integration_uri        = var.listener_arn
  connection_type        = "VPC_LINK"
  connection_id          = aws_apigatewayv2_vpc_link.this.id
  payload_format_version = "1.0"
  timeout_milliseconds   = 29000

  request_parameters = {
    # overwrite: a client cannot pick another service by sending the header itself
    "overwrite:header.${var.service_header}" = each.key
  }
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:Authorization is the services' own (JWT verified with the auth service's JWKS); sign-up, login and JWKS routes must stay open.
  for_each = var.routes

  api_id    = aws_apigatewayv2_api.this.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.service[each.value].id}"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit    = var.throttle.rate_limit
    throttling_burst_limit   = var.throttle.burst_limit
    detailed_metrics_enabled = true # per-route request, latency and error metrics
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = jsonencode({
      requestId        = "$context.requestId"
      ip               = "$context.identity.sourceIp"
      requestTime      = "$context.requestTime"
      httpMethod       = "$context.httpMethod"
      routeKey         = "$context.routeKey"
      path             = "$context.path"
      status           = "$context.status"
      responseLength   = "$context.responseLength"
      latencyMs        = "$context.responseLatency"
      integrationMs    = "$context.integrationLatency"
      integrationError = "$context.integrationErrorMessage"
    })
  }
}
