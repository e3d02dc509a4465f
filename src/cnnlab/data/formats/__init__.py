"""The detection formats, one a file: Pascal VOC XML, COCO JSON, YOLO txt labels.

Each module reads its layout into :class:`~cnnlab.data.annotations.Annotation` lists and
registers its ``data.name`` with :func:`~cnnlab.data.registry.register_dataset`; importing this
package registers them all. What the formats share (the problem counts, the box checks, the small
file readers) is in :mod:`cnnlab.data.annotations`.
"""

from cnnlab.data.formats import coco, voc, yolo  # noqa: F401 -- registers voc, raccoon, coco, yolo
