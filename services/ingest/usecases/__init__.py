"""Ingest's operations, over plain values and its ports (store, publish, waiters); no HTTP or AMQP here.

Each raises only the errors of ``services.ingest.errors``; the adapters (``http_cgi``, ``http_api``,
``http_admin``, ``amqp_intake``, ``voevents.http``) parse their input, call one of these and render the
answer (``services.ingest.answers`` maps the errors).
"""
