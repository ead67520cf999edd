"""modelyard: generate model repositories that CI trains, gates, exports, serves and deploys."""

__version__ = "0.1.0"
