"""The SNS push adapter's pure parts: which platform applications the settings give (placeholders
against the emulator, nothing to create with in AWS without credentials) and the message it publishes.
Its calls to SNS run against the AWS emulator in ``integration/test_push_notifications.py``."""

from __future__ import annotations

import json

from spendsense_profile.adapters.push import (
    EMULATOR_CREDENTIAL,
    application_name,
    platform_applications,
    sns_message,
)
from spendsense_profile.domain.profile import recommendations_to_review
from spendsense_profile.settings import ProfileSettings


def test_against_the_emulator_unset_credentials_are_placeholders():
    apps = platform_applications(ProfileSettings(aws_endpoint_url="http://127.0.0.1:5000"))
    assert apps["ios"].platform == "APNS"
    assert apps["android"].platform == "GCM"
    assert apps["ios"].attributes == {
        "PlatformCredential": EMULATOR_CREDENTIAL,
        "PlatformPrincipal": EMULATOR_CREDENTIAL,
    }
    assert apps["android"].attributes == {"PlatformCredential": EMULATOR_CREDENTIAL}


def test_in_aws_without_credentials_an_application_can_only_be_found():
    apps = platform_applications(ProfileSettings(aws_endpoint_url=None))
    assert apps["ios"].attributes is None
    assert apps["android"].attributes is None
    empty = ProfileSettings(aws_endpoint_url=None, push_apns_credential="", push_fcm_credential=" ")
    assert [a.attributes for a in platform_applications(empty).values()] == [None, None]  # empty: unset


def test_configured_credentials_are_the_application_attributes():
    settings = ProfileSettings(
        push_apns_credential="-----BEGIN PRIVATE KEY-----x",
        push_apns_principal="KEY123",
        push_apns_team_id="TEAM42",
        push_apns_bundle_id="com.example.spendsense",
        push_apns_sandbox=True,
        push_fcm_credential='{"type": "service_account"}',
        aws_endpoint_url="http://127.0.0.1:5000",  # given credentials win over placeholders
    )
    apps = platform_applications(settings)
    assert apps["ios"].platform == "APNS_SANDBOX"
    assert apps["ios"].attributes == {
        "PlatformCredential": "-----BEGIN PRIVATE KEY-----x",
        "PlatformPrincipal": "KEY123",
        "ApplePlatformTeamID": "TEAM42",
        "ApplePlatformBundleID": "com.example.spendsense",
    }
    assert apps["android"].attributes == {"PlatformCredential": '{"type": "service_account"}'}
    assert "KEY123" not in repr(settings.push_apns_credential)  # the key stays a secret


def test_application_names_carry_the_deployment():
    assert application_name("dev-chuong", "ios") == "spendsense-dev-chuong-push-ios"
    assert application_name("prod", "android") == "spendsense-prod-push-android"


def test_the_message_has_a_payload_per_platform_and_the_default():
    message = json.loads(sns_message(recommendations_to_review(3)))
    text = "You have 3 new recommendations to review in SpendSense"
    assert message["default"] == text
    apns = json.loads(message["APNS"])
    assert apns["aps"]["alert"] == {"title": "SpendSense", "body": text}
    assert apns["kind"] == "recommendations_published"
    assert json.loads(message["APNS_SANDBOX"]) == apns
    gcm = json.loads(message["GCM"])
    assert gcm["notification"] == {"title": "SpendSense", "body": text}
    assert gcm["data"] == {"kind": "recommendations_published", "count": "3"}  # FCM data: strings only
