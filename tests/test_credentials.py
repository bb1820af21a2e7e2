"""Credentials: the lookup order, every exchange against the emulator, refresh, and redaction."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from yart_jupyter import errors
from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.clients.credentials import (
    ApiKey,
    IamToken,
    Metadata,
    OAuthToken,
    ServiceAccountKey,
    YcCli,
    resolve_credentials,
)
from yart_jupyter.emulator import Emulator


def test_missing_credentials_lists_every_way() -> None:
    with pytest.raises(errors.CredentialsNotFoundError) as info:
        resolve_credentials(env={"PATH": "/nonexistent"})
    text = str(info.value)
    for way in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_SERVICE_ACCOUNT_KEY_FILE", "yc",
                "YC_METADATA_ADDR", "YC_FOLDER_ID", "emulator"):
        assert way in text
    assert "\n" not in text


def test_lookup_order(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps({"id": "k", "service_account_id": "sa", "private_key": "x"}))
    env = {
        "YC_API_KEY": "env-api-key-1", "YC_IAM_TOKEN": "t1.env-token", "YC_OAUTH_TOKEN": "y0_oauth",
        "YC_SERVICE_ACCOUNT_KEY_FILE": str(key_file), "PATH": "/nonexistent",
    }
    assert isinstance(resolve_credentials(iam_token="t1.arg", env=env), IamToken)
    assert isinstance(resolve_credentials(env=env), ApiKey)
    del env["YC_API_KEY"]
    assert isinstance(resolve_credentials(env=env), IamToken)
    del env["YC_IAM_TOKEN"]
    assert isinstance(resolve_credentials(env=env), OAuthToken)
    del env["YC_OAUTH_TOKEN"]
    assert isinstance(resolve_credentials(env=env), ServiceAccountKey)
    del env["YC_SERVICE_ACCOUNT_KEY_FILE"]
    fake_yc = _fake_yc(tmp_path, "t1.from-cli")
    env["PATH"] = str(fake_yc.parent)
    assert isinstance(resolve_credentials(env=env), YcCli)
    env["PATH"] = "/nonexistent"
    with pytest.raises(errors.CredentialsNotFoundError):
        resolve_credentials(env=env)  # the metadata service is never probed unless asked
    assert isinstance(resolve_credentials(env=env, metadata=True), Metadata)


def test_reprs_never_show_secrets() -> None:
    secret = "AQVN-super-secret-api-key-value"
    for creds in (ApiKey(secret), IamToken(secret), OAuthToken(secret)):
        assert secret not in repr(creds) and secret not in creds.describe()
    client = YandexArtClient(api_key=secret, folder_id="f", env={})
    assert secret not in repr(client)


async def test_oauth_exchange_and_refresh_on_401(
    make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    creds = OAuthToken("emulator-oauth", iam_url=f"{emulator.url}/iam/v1/tokens")
    async with make_client(api_key=None, credentials=creds) as client:
        await client.generate("oauth", seed=1)
        assert emulator.stats.by_phase["token"] == 1
        emulator.iam.issued.clear()  # every issued token is now unknown: the next call gets 401
        await client.generate("oauth again", seed=2)
    assert emulator.stats.by_phase["token"] == 2
    assert emulator.stats.by_status[401] == 1


async def test_refresh_only_once(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    creds = OAuthToken("emulator-oauth", iam_url=f"{emulator.url}/iam/v1/tokens")
    async with make_client(api_key=None, credentials=creds) as client:
        await client.generate("oauth", seed=1)
        emulator.iam.issued.clear()
        emulator.config.oauth_tokens.clear()  # the refresh itself is refused now
        with pytest.raises(errors.AuthenticationError, match="token exchange"):
            await client.generate("fails", seed=2)


async def test_token_refreshed_before_expiry(
    make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    emulator.config.iam_token_ttl = 200  # shorter than the refresh margin: every use refreshes
    creds = OAuthToken("emulator-oauth", iam_url=f"{emulator.url}/iam/v1/tokens")
    async with make_client(api_key=None, credentials=creds) as client:
        await client.generate("one", seed=1)
        await client.generate("two", seed=2)
    assert emulator.stats.by_status.get(401, 0) == 0
    assert emulator.stats.by_phase["token"] >= 2


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


async def test_service_account_key_exchange(
    tmp_path: Path, make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    private, public = _rsa_pair()
    emulator.config.service_account_keys["ajekey0001"] = public
    key_file = tmp_path / "authorized_key.json"
    key_file.write_text(json.dumps({
        "id": "ajekey0001", "service_account_id": "ajesa0001",
        "private_key": "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <ajekey0001>\n" + private,
    }))
    creds = resolve_credentials(
        env={"YC_SERVICE_ACCOUNT_KEY_FILE": str(key_file)}, iam_url=f"{emulator.url}/iam/v1/tokens"
    )
    assert isinstance(creds, ServiceAccountKey)
    assert "BEGIN PRIVATE KEY" not in repr(creds)
    async with make_client(api_key=None, credentials=creds) as client:
        image = await client.generate("service account", seed=1)
    assert image.image_bytes
    import jwt

    token = creds.make_jwt()
    assert jwt.get_unverified_header(token)["kid"] == "ajekey0001"
    claims = jwt.decode(token, public, algorithms=["PS256"], audience="https://iam.api.cloud.yandex.net/iam/v1/tokens")
    assert claims["iss"] == "ajesa0001" and claims["exp"] - claims["iat"] <= 3600


async def test_service_account_unknown_key_is_refused(
    make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    private, _ = _rsa_pair()
    creds = ServiceAccountKey(
        {"id": "unknown", "service_account_id": "sa", "private_key": private}, f"{emulator.url}/iam/v1/tokens"
    )
    async with make_client(api_key=None, credentials=creds) as client:
        with pytest.raises(errors.AuthenticationError):
            await client.generate("nope", seed=1)


def _fake_yc(tmp_path: Path, token: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / "yc"
    exe.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'iam create-token' ] && echo {token} && exit 0\nexit 3\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


async def test_yc_cli(tmp_path: Path, make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    emulator.config.iam_tokens.add("t1.from-cli-abcdef")
    exe = _fake_yc(tmp_path, "t1.from-cli-abcdef")
    creds = resolve_credentials(env={"PATH": str(exe.parent)})
    async with make_client(api_key=None, credentials=creds) as client:
        assert (await client.generate("cli", seed=1)).image_bytes


async def test_metadata_service(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    address = emulator.url.removeprefix("http://")
    creds = resolve_credentials(env={"YC_METADATA_ADDR": address, "PATH": "/nonexistent"})
    assert isinstance(creds, Metadata)
    async with make_client(api_key=None, credentials=creds) as client:
        assert (await client.generate("vm", seed=1)).image_bytes
    _, _path, headers = next(r for r in emulator.recent if r[1].startswith("/computeMetadata"))
    assert headers["Metadata-Flavor"] == "Google"


async def test_secrets_absent_from_debug_logs_and_errors(
    make_client: Callable[..., YandexArtClient], emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "y0_distinctive-oauth-secret-42"
    emulator.config.oauth_tokens.add(secret)
    creds = OAuthToken(secret, iam_url=f"{emulator.url}/iam/v1/tokens")
    emulator.inject("status", "any", times=2, status=503)
    with caplog.at_level(logging.DEBUG):
        async with make_client(api_key=None, credentials=creds) as client:
            await client.generate("logs", seed=1)
            with pytest.raises(errors.YandexArtError) as info:
                await client.get_operation(secret)
    issued = [t for t in emulator.iam.issued]
    text = caplog.text + str(info.value) + repr(info.value) + repr(client)
    assert secret not in text
    assert all(token not in text for token in issued)


def test_iam_expiry_parsing() -> None:
    from yart_jupyter.clients.credentials import _parse_expiry

    assert abs(_parse_expiry("2030-01-01T00:00:00.123456789Z") - 1893456000.123456) < 1e-3
    assert _parse_expiry(None) > time.time() + 3600


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="Cannot read"):
        ServiceAccountKey.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(errors.ConfigurationError, match="lacks"):
        ServiceAccountKey.from_file(bad)
    assert os.path.exists(bad)
