"""The OTLP/HTTP traces receiver: OpenTelemetry spans into schema-v1 sessions.

``decode`` reads an ExportTraceServiceRequest (protobuf or OTLP JSON) into plain spans,
``mapping`` turns a session's spans into a ``SessionPayload``, ``store`` resolves which
session a trace belongs to and stores through ``ingest.services``, and ``views`` answers
the exporter as the OTLP specification says.
"""
