"""Tests. Every folder is a package, so package-scoped fixtures (a Docker stack) are torn
down when their package is done, before the next one starts its own."""
