"""Alert feeds: VOEvent packets from HTTP, AMQP and VOEvent Transport Protocol brokers create and refine events.

``packet`` reads a packet (pure), ``policy`` says what is accepted and what makes a usable target,
``events`` merges a packet into an event (pure), ``intake`` is the use case every intake calls,
``vtp`` and ``subscriber`` speak the VOEvent Transport Protocol, ``wiring`` is called by ingest's
composition root.
"""
