"""Web pages. For now the front page, which points at the API and its description."""

from flask import Blueprint, Flask, render_template

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    return render_template("index.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
