# The web app (web/, built into web/dist and uploaded by infra/deploy_web.sh) on CloudFront, and the API
# on the same domain:
#
#   /assets/*  -> frontend bucket   hashed file names: cached a year at the edge and in browsers (immutable)
#   /api/*     -> API Gateway       never cached; every header but Host, cookies and query strings forwarded
#   *          -> frontend bucket   never cached (index.html: no-cache); a path without a file extension
#                                   is the app's own route and gets /index.html (the SPA fallback)
#
# One distribution, one domain, for both: the app calls the API at /api/v1 on its own origin and its
# content security policy allows connect-src 'self' only, so no CORS and no API URL baked into the build,
# the same layout as the local gateway. The SPA fallback is a CloudFront Function, not custom error
# responses: those apply to the whole distribution and would turn the API's own 403 and 404 answers into
# index.html with 200.
#
# The bucket stays private: CloudFront signs its requests (origin access control) and the bucket policy
# (below) lets only this distribution read; the deployment key's policy (modules/encryption) lets S3
# decrypt the objects for CloudFront.

locals {
  api_domain = trimsuffix(trimprefix(var.api_endpoint, "https://"), "/")
  one_year   = 31536000

  # The same headers and cache rules the local gateway sends (libs/shared/spendsense_shared/gateway/web.py;
  # tests/test_terraform.py keeps them equal).
  content_security_policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
  response_policies = {
    app = {
      comment       = "SpendSense web app: index.html and other files, always revalidated; security headers"
      cache_control = "no-cache"
      csp           = true
    }
    assets = {
      comment       = "SpendSense web app: hashed build files, cached for a year; security headers"
      cache_control = "public, max-age=${local.one_year}, immutable"
      csp           = false
    }
    api = {
      comment       = "SpendSense API through CloudFront: security headers; caching is the services' to say"
      cache_control = null
      csp           = false
    }
  }

  # Status codes CloudFront caches for 10 s by default. Listed without a response page, so answers are
  # passed on unchanged, with 0 s: one user's 403 or 404 from /api/* is never another's.
  uncached_errors = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]
}

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

# For API Gateway: the viewer's headers (Authorization included, allowed since nothing is cached), cookies
# and query strings, but not Host, which API Gateway needs to be its own.
data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

resource "aws_cloudfront_origin_access_control" "web" {
  name                              = "${var.name}-web"
  description                       = "SpendSense ${var.name}: CloudFront reads the web app's bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_function" "spa_fallback" {
  name    = "${var.name}-spa-fallback"
  comment = "SpendSense web app: routes of the app get /index.html"
  runtime = "cloudfront-js-2.0"
  publish = true
  code    = file("${path.module}/spa_fallback.js")
}

resource "aws_cloudfront_cache_policy" "assets" {
  name        = "${var.name}-web-assets"
  comment     = "SpendSense web app: hashed build files never change, so they stay a year whatever the origin says"
  min_ttl     = local.one_year
  default_ttl = local.one_year
  max_ttl     = local.one_year

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_response_headers_policy" "this" {
  for_each = local.response_policies

  name    = "${var.name}-web-${each.key}"
  comment = each.value.comment

  # What browsers cache, whatever metadata an upload left on the object.
  dynamic "custom_headers_config" {
    for_each = each.value.cache_control == null ? [] : [each.value.cache_control]
    content {
      items {
        header   = "Cache-Control"
        value    = custom_headers_config.value
        override = true
      }
    }
  }

  security_headers_config {
    # HTTPS only, for a year. "preload" only allows listing in browsers' preload lists; nothing is
    # submitted by itself (and *.cloudfront.net is not ours to submit).
    strict_transport_security {
      access_control_max_age_sec = local.one_year
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "same-origin"
      override        = true
    }
    dynamic "content_security_policy" {
      for_each = each.value.csp ? [local.content_security_policy] : []
      content {
        content_security_policy = content_security_policy.value
        override                = true
      }
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:No WAF yet: a CLOUDFRONT web ACL must live in us-east-1 (a second provider) and the common rule set's 8 KB body limit would block statement uploads; API Gateway throttles, the services authenticate and rate-limit.
  #checkov:skip=CKV2_AWS_47:No WAF yet (see CKV_AWS_68 above), so no Log4j rule set either; no process here runs Java.
  #checkov:skip=CKV_AWS_310:One origin per behaviour on purpose: origin groups fail over GET/HEAD/OPTIONS only, so /api/* could not use one, and the bucket is versioned within the region.
  #checkov:skip=CKV_AWS_374:No geographic restriction: the app serves its users wherever they are; access is the API's to decide.
  #checkov:skip=CKV2_AWS_42:CloudFront's own *.cloudfront.net certificate until var.web names aliases with an ACM certificate, which then serves them (TLSv1.2_2021).
  #checkov:skip=CKV_AWS_174:With CloudFront's own certificate the viewer TLS policy cannot be chosen; with var.web's ACM certificate it is TLSv1.2_2021.
  enabled             = true
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  comment             = "SpendSense ${var.name}: web app (S3) and /api/* (API Gateway)"
  default_root_object = "index.html"
  price_class         = var.price_class
  aliases             = var.aliases

  origin {
    origin_id                = "web"
    domain_name              = var.bucket.regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.web.id
  }

  origin {
    origin_id   = "api"
    domain_name = local.api_domain

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
      origin_read_timeout    = 30 # API Gateway's own integration timeout is 29 s
    }
  }

  # index.html, other files, and the app's routes (rewritten to /index.html).
  default_cache_behavior {
    target_origin_id           = "web"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this["app"].id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.spa_fallback.arn
    }
  }

  ordered_cache_behavior {
    path_pattern               = "/assets/*"
    target_origin_id           = "web"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = aws_cloudfront_cache_policy.assets.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this["assets"].id
  }

  # The API: HTTPS only (a redirect would turn a POST into a GET), nothing cached.
  ordered_cache_behavior {
    path_pattern               = "/api/*"
    target_origin_id           = "api"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = false
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this["api"].id
  }

  dynamic "custom_error_response" {
    for_each = local.uncached_errors
    content {
      error_code            = custom_error_response.value
      error_caching_min_ttl = 0
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.certificate_arn == ""
    acm_certificate_arn            = var.certificate_arn == "" ? null : var.certificate_arn
    ssl_support_method             = var.certificate_arn == "" ? null : "sni-only"
    minimum_protocol_version       = var.certificate_arn == "" ? "TLSv1" : "TLSv1.2_2021"
  }

  logging_config {
    bucket          = var.logs_bucket_domain_name
    prefix          = "cloudfront/"
    include_cookies = false
  }
}

# --- The bucket's policy ------------------------------------------------------------------------------

# Every bucket's statements (TLS only; modules/data) plus: this distribution reads the web app's files.
# ListBucket turns a missing file into 404 instead of 403; CloudFront only ever asks for single objects
# (query strings are not forwarded), so nothing is listed.
data "aws_iam_policy_document" "bucket" {
  source_policy_documents = [var.bucket.policy_json]

  statement {
    sid       = "CloudFrontReadsWebApp"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [var.bucket.arn, "${var.bucket.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "web" {
  bucket = var.bucket.id
  policy = data.aws_iam_policy_document.bucket.json
}
