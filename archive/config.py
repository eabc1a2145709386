"""Default settings; the instance folder's config.py and FLASK_* variables override them."""

import os

MEGABYTE = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Defaults:
    # SQLALCHEMY_DATABASE_URI, FILES_DIR and SEARCH_INDEX_DIR default to paths inside the
    # instance folder; create_app fills them in.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # Largest source file accepted for upload, in bytes.
    FILES_MAX_BYTES = 100 * MEGABYTE
    # Longest text kept from one uploaded file (plain text, HTML, PDF) for search, in characters.
    EXTRACTED_TEXT_MAX_CHARS = 1_000_000
    API_DEFAULT_PER_PAGE = 50
    API_MAX_PER_PAGE = 200

    # The archive's name, as pages and "cite this record" blocks give it.
    ARCHIVE_NAME = "Constancia"

    # Web sessions: the cookie is out of scripts' reach, not sent on cross-site requests, and
    # marked Secure whenever the request came over HTTPS (see archive/web/security.py).
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    # A CSRF token lasts as long as the session: a long case entry must not fail at "save".
    WTF_CSRF_TIME_LIMIT = None
    # Behind a reverse proxy, how many proxies' X-Forwarded-* headers to trust (0: none).
    PROXY_COUNT = 0

    # Failed sign-ins allowed per account and per address; further attempts are refused.
    LOGIN_LIMIT_PER_ACCOUNT = "5 per 15 minutes"
    LOGIN_LIMIT_PER_ADDRESS = "20 per 15 minutes"
    # Where the counts live: memory (one process) or a shared store, e.g. redis://host:6379.
    RATELIMIT_STORAGE_URI = "memory://"

    # Languages of the pages; the first is used when the browser asks for none of them.
    LANGUAGES = ("es", "en")
    BABEL_DEFAULT_LOCALE = "es"
    BABEL_DEFAULT_TIMEZONE = "UTC"

    # Thresholds of the indicators, overriding the literature's conventions in
    # archive/indicators.py THRESHOLDS: {"civilian_agent_death_ratio": 10, "lethality_index": 1,
    # "share_of_homicides": 10}. A figure above its threshold is flagged.
    INDICATOR_THRESHOLDS: dict = {}

    # Bootstrap's CSS, scripts and icons come from the app itself, never from a CDN.
    BOOTSTRAP_SERVE_LOCAL = True
    BABEL_TRANSLATION_DIRECTORIES = os.path.join(ROOT, "translations")
