"""CSV exports that a spreadsheet opens as text, never as formulas.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by Excel,
LibreOffice and Google Sheets: a customer named `=HYPERLINK(...)` would become a live link (or
worse, DDE) in the export a staff member opens. Such cells get a leading `'` (OWASP's advice);
every admin view exports through `SafeExportView`, and a test checks that none does otherwise.
"""

from __future__ import annotations

import builtins
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from sqladmin import ModelView
from sqladmin.helpers import secure_filename
from starlette.responses import StreamingResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_TRIGGERS) else cell


class SafeExportView(ModelView):
    async def _export_csv(self, data: builtins.list[Any]) -> StreamingResponse:
        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow([neutralise(name) for name in self._export_prop_names])
            for row in data:
                writer.writerow(
                    [
                        neutralise(str(await self.get_prop_value(row, name)))
                        for name in self._export_prop_names
                    ]
                )
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()

        filename = secure_filename(self.get_export_name(export_type="csv"))
        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment;filename={filename}"},
        )
