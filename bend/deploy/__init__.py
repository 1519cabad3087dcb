"""Kubernetes deployment helpers: Strimzi topics from topics as code, kustomize render, checks.

Modules: `topics` (KafkaTopic generator), `envfile` (BEND_* env files as Settings),
`kustomize` (render an overlay), `validate` (offline schema checks), `cli` (`bend deploy`).
"""
