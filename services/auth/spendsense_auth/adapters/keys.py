"""Where the auth service's signing key comes from: the environment only (a PEM value or a file)."""

from spendsense_auth.adapters.tokens import KeyRing
from spendsense_auth.settings import AuthSettings
from spendsense_shared.jwk import SigningKey, public_jwk_from_pem
from spendsense_shared.logging import get_logger

log = get_logger(__name__)


def load_signing_key(settings: AuthSettings) -> SigningKey:
    if settings.jwt_private_key is not None:
        return SigningKey.from_pem(settings.jwt_private_key.get_secret_value())
    if settings.jwt_private_key_file is not None:
        return SigningKey.from_pem(settings.jwt_private_key_file.read_bytes())
    if settings.env in ("prod", "staging"):
        raise RuntimeError("SPENDSENSE_JWT_PRIVATE_KEY or SPENDSENSE_JWT_PRIVATE_KEY_FILE must be set")
    log.warning("jwt_key_ephemeral", reason="no key configured; tokens will not survive a restart")
    return SigningKey.generate()


def load_key_ring(settings: AuthSettings) -> KeyRing:
    """The current signing key and the public keys of the previous ones (from the settings)."""
    previous = [public_jwk_from_pem(pem.get_secret_value()) for pem in settings.jwt_previous_keys]
    previous += [public_jwk_from_pem(path.read_bytes()) for path in settings.jwt_previous_key_files]
    return KeyRing(current=load_signing_key(settings), previous=tuple(previous))
