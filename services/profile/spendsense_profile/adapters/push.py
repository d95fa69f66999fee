"""Mobile push through Amazon SNS (the AWS emulator's SNS locally): the :class:`PushNotifier` port.

- **Platform applications**, one per device platform: ``spendsense-{env}-push-ios`` (SNS platform
  ``APNS``, or ``APNS_SANDBOX``) and ``spendsense-{env}-push-android`` (``GCM``, which is FCM). At the first
  push of a process the application is found by name, or created with the credentials from the settings
  (``SPENDSENSE_PUSH_*``); found, it gets those credentials again, so a rotated key takes effect at the
  next start. The emulator accepts any credentials: without settings it gets placeholders, so the
  embedded stack needs no manual step. In AWS without credentials the application must already exist.
- **Endpoints**, one per device token, created at the device's first push (``CreatePlatformEndpoint`` is
  idempotent per token) and made enabled with the current token, as AWS recommends: an endpoint that
  exists disabled (APNs or FCM reported the token invalid, and the device registered again) is
  re-enabled instead of failing.
- **Publish** to the endpoint's ARN, with one payload per platform (``MessageStructure=json``).

Neither tokens nor messages are logged.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import SecretStr

from spendsense_profile.domain.profile import PushNotification, PushPlatform
from spendsense_profile.handlers.push import PushEndpointGone, PushNotConfigured, PushNotifier
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.aws import Aws
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

# What the emulator is given when no credentials are set: it stores them and checks nothing.
EMULATOR_CREDENTIAL = "spendsense-emulator-placeholder"
# SNS's answer when the token already has an endpoint with other attributes (e.g. disabled).
_EXISTING_ENDPOINT = re.compile(r"Endpoint (arn:\S+) already exists with the same [Tt]oken")
# Publish to an endpoint that is disabled, or deleted (AWS: InvalidParameter "No endpoint found …").
_GONE_CODES = frozenset({"EndpointDisabled", "NotFound", "ResourceNotFound"})


@dataclass(frozen=True)
class PlatformApplication:
    """How one device platform reaches SNS: the SNS platform, and the attributes (credentials) to create
    its application with; None when none are configured (the application must exist)."""

    platform: str  # APNS, APNS_SANDBOX or GCM
    attributes: Mapping[str, str] | None


def application_name(env: str, platform: PushPlatform) -> str:
    return f"spendsense-{env}-push-{platform}"


def _secret(value: SecretStr | None) -> str:
    """The secret's value; "" when unset or blank (an empty variable counts as unset)."""
    secret = value.get_secret_value() if value is not None else ""
    return secret if secret.strip() else ""


def platform_applications(settings: ProfileSettings) -> dict[PushPlatform, PlatformApplication]:
    """Each platform's application from the settings (placeholder credentials against the emulator)."""
    emulator = settings.aws_endpoint_url is not None
    apns_key = _secret(settings.push_apns_credential)
    fcm_key = _secret(settings.push_fcm_credential)
    apns: dict[str, str] | None = None
    if apns_key:
        apns = {"PlatformCredential": apns_key}
        optional = {
            "PlatformPrincipal": settings.push_apns_principal,
            "ApplePlatformTeamID": settings.push_apns_team_id,
            "ApplePlatformBundleID": settings.push_apns_bundle_id,
        }
        apns |= {k: v for k, v in optional.items() if v}
    elif emulator:
        apns = {"PlatformCredential": EMULATOR_CREDENTIAL, "PlatformPrincipal": EMULATOR_CREDENTIAL}
    fcm: dict[str, str] | None = None
    if fcm_key:
        fcm = {"PlatformCredential": fcm_key}
    elif emulator:
        fcm = {"PlatformCredential": EMULATOR_CREDENTIAL}
    return {
        "ios": PlatformApplication("APNS_SANDBOX" if settings.push_apns_sandbox else "APNS", apns),
        "android": PlatformApplication("GCM", fcm),
    }


def sns_message(notification: PushNotification) -> str:
    """The ``MessageStructure=json`` message: a payload per platform, and the required default."""
    apns = {
        "aps": {"alert": {"title": notification.title, "body": notification.body}},
        "kind": notification.kind,
        "count": notification.count,
    }
    gcm = {
        "notification": {"title": notification.title, "body": notification.body},
        "data": {"kind": notification.kind, "count": str(notification.count)},
    }
    return json.dumps(
        {
            "default": notification.body,
            "APNS": json.dumps(apns),
            "APNS_SANDBOX": json.dumps(apns),
            "GCM": json.dumps(gcm),
        }
    )


def _error(exc: ClientError) -> tuple[str, str]:
    error: dict[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))


class SnsPushNotifier(PushNotifier):
    def __init__(self, aws: Aws, env: str, applications: Mapping[PushPlatform, PlatformApplication]):
        self.aws = aws
        self.env = env
        self.applications = dict(applications)
        self._arns: dict[PushPlatform, str] = {}
        self._lock = asyncio.Lock()

    async def application_arn(self, platform: PushPlatform) -> str:
        """The platform application's ARN: found by name, or created (once per process)."""
        if platform in self._arns:
            return self._arns[platform]
        async with self._lock:
            if platform not in self._arns:
                self._arns[platform] = await self._find_or_create(platform)
        return self._arns[platform]

    async def _find_or_create(self, platform: PushPlatform) -> str:
        try:
            return await self._find_or_create_application(platform)
        except ClientError as exc:
            if _error(exc)[0] != "AuthorizationError":
                raise
            # A missing permission is configuration, like missing credentials: retrying cannot help.
            raise PushNotConfigured(f"not allowed to use push applications: {_error(exc)[1]}") from exc

    async def _find_or_create_application(self, platform: PushPlatform) -> str:
        config = self.applications[platform]
        name = application_name(self.env, platform)
        suffix = f":app/{config.platform}/{name}"
        async with self.aws.client("sns") as sns:
            found = None
            async for page in sns.get_paginator("list_platform_applications").paginate():
                for application in page.get("PlatformApplications", []):
                    if application["PlatformApplicationArn"].endswith(suffix):
                        found = str(application["PlatformApplicationArn"])
            if found is None and config.attributes is None:
                raise PushNotConfigured(f"no platform application {name} and no credentials to create it")
            if found is None:
                created = await sns.create_platform_application(
                    Name=name, Platform=config.platform, Attributes=dict(config.attributes or {})
                )
                found = str(created["PlatformApplicationArn"])
                log.info("push_application_created", platform=platform, sns_platform=config.platform)
            elif config.attributes is not None:
                await sns.set_platform_application_attributes(
                    PlatformApplicationArn=found, Attributes=dict(config.attributes)
                )
        return found

    async def create_endpoint(self, platform: PushPlatform, token: str) -> str:
        application = await self.application_arn(platform)
        async with self.aws.client("sns") as sns:
            try:
                created = await sns.create_platform_endpoint(PlatformApplicationArn=application, Token=token)
                arn = str(created["EndpointArn"])
            except ClientError as exc:
                code, message = _error(exc)
                existing = _EXISTING_ENDPOINT.search(message) if code == "InvalidParameter" else None
                if existing is not None:
                    arn = existing.group(1)  # the token's endpoint, with other attributes: re-enabled below
                elif code == "InvalidParameter" and "Token" in message:
                    raise PushEndpointGone("token_refused") from exc
                else:
                    raise
            attributes = (await sns.get_endpoint_attributes(EndpointArn=arn)).get("Attributes", {})
            if str(attributes.get("Enabled", "true")).lower() != "true" or attributes.get("Token") != token:
                await sns.set_endpoint_attributes(
                    EndpointArn=arn, Attributes={"Token": token, "Enabled": "true"}
                )
                log.info("push_endpoint_enabled", platform=platform)
        return arn

    async def send(self, endpoint_arn: str, notification: PushNotification) -> None:
        try:
            async with self.aws.client("sns") as sns:
                response = await sns.publish(
                    TargetArn=endpoint_arn, Message=sns_message(notification), MessageStructure="json"
                )
        except ClientError as exc:
            code, message = _error(exc)
            if code in _GONE_CODES or (code == "InvalidParameter" and "no endpoint found" in message.lower()):
                raise PushEndpointGone(code) from exc
            raise
        log.info("push_published", kind=notification.kind, message_id=response.get("MessageId"))

    async def delete_endpoint(self, endpoint_arn: str) -> None:
        try:
            async with self.aws.client("sns") as sns:
                await sns.delete_endpoint(EndpointArn=endpoint_arn)
        except ClientError as exc:
            if _error(exc)[0] not in _GONE_CODES:
                raise
