"""The knowledge base's document registry, a domain of its own.

Who writes what: the gateway queues an upload (record and bytes, one named
operation, `DocumentRegistry.queue`); the ingest worker owns every change after
that (processing, indexed, failed, removal). Everyone may read.
"""
