"""cnnlab's version, in a module of its own that imports nothing.

Any module may read it (run markers, video metadata, summaries) without importing the ``cnnlab``
package's lazy API entry points, so no import of the version closes a cycle through them.
"""

__version__ = "0.1.0"
