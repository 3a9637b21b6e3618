"""Importing students from CSV/XLSX files and API payloads: one service for page, API and CLI.

- :mod:`.reading`: open a file, detect format/encoding/delimiter, stream rows, refuse non-tables.
- :mod:`.mapping`: the column mapping (JSON) and the suggestion made from the headers.
- :mod:`.validation`: clean each row against the mapping and the feature schema.
- :mod:`.upsert`: compare chunks with stored students and write the differences plus audit rows.
- :mod:`.service`: the two-pass import (validate everything, then upsert) and its report.
"""

from .errors import CellError, ImportFileError
from .mapping import ImportMappingSpec, mapping_from_dict, suggest_mapping
from .service import ImportReport, import_file, import_mapping_remember, import_mapping_remembered, import_preview

__all__ = [
    "CellError", "ImportFileError", "ImportMappingSpec", "ImportReport", "import_file", "import_mapping_remember",
    "import_mapping_remembered", "import_preview", "mapping_from_dict", "suggest_mapping",
]
