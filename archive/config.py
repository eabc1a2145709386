"""Default settings; the instance folder's config.py and FLASK_* variables override them."""

MEGABYTE = 1024 * 1024


class Defaults:
    # SQLALCHEMY_DATABASE_URI, FILES_DIR and SEARCH_INDEX_DIR default to paths inside the
    # instance folder; create_app fills them in.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # Largest source file accepted for upload, in bytes.
    FILES_MAX_BYTES = 100 * MEGABYTE
    API_DEFAULT_PER_PAGE = 50
    API_MAX_PER_PAGE = 200
