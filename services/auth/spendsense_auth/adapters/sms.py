"""SMS through Amazon SNS (``Publish`` to a phone number), or the emulator's SNS locally."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from spendsense_auth.domain.phone import mask_phone
from spendsense_auth.handlers.phone import SmsDeliveryError, SmsSender
from spendsense_shared.aws import Aws
from spendsense_shared.logging import get_logger

log = get_logger(__name__)


class SnsSmsSender(SmsSender):
    def __init__(self, aws: Aws):
        self.aws = aws
        # One-time codes are transactional messages (delivered first, also to DND-registered numbers).
        self.attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}

    async def send(self, phone: str, message: str) -> None:
        # Neither the message (it holds the code) nor the full number is ever logged.
        try:
            async with self.aws.client("sns") as sns:
                response = await sns.publish(
                    PhoneNumber=phone, Message=message, MessageAttributes=self.attributes
                )
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            log.warning("sms_failed", phone=mask_phone(phone), error=type(exc).__name__, code=code)
            raise SmsDeliveryError(type(exc).__name__) from exc
        log.info("sms_sent", phone=mask_phone(phone), message_id=response.get("MessageId"))
