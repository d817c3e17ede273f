"""LiveScore's shared kernel: the canonical model, configuration, errors,
the one clock, structured logging and the embedded servers.

Every layer (providers, pipeline, edge, store) may import from here; this
package imports none of them.
"""

__version__ = "0.1.0"
