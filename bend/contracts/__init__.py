"""Bend's records on the wire: Avro schemas and their history, the codec, topics as code.

Import the module you need (`bend.contracts.codec`, `.topics`, `.admin`); importing the
package itself loads nothing.
"""
