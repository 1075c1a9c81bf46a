"""Checking a PDF report made elsewhere before it is kept and sent to the
client's platform, by its content, never by its name or the browser's
content type.

The manager's people open these files: a PDF that runs JavaScript, launches
a program or carries other files inside is refused, as is one we cannot open
ourselves (an encrypted PDF could hide anything).
"""

from __future__ import annotations

from typing import IO

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, PdfObject

MAX_PDF_BYTES = 20 * 1024 * 1024
# A PDF of a few pages has hundreds of objects; this bounds the walk of a
# hostile file (object streams can pack millions of tiny objects).
MAX_OBJECTS = 500_000

NOT_A_PDF = "Ce fichier n'est pas un PDF lisible."
ENCRYPTED = "Ce PDF est protégé par un mot de passe : déposez une version sans protection."
JAVASCRIPT = "Ce PDF contient du JavaScript : il ne peut pas être transmis au client."
LAUNCH = "Ce PDF contient une action qui lance un programme : il ne peut pas être transmis au client."
ON_OPENING = (
    "Ce PDF ouvre un lien ou envoie des données dès son ouverture (action automatique) : "
    "il ne peut pas être transmis au client. Enregistrez-le à nouveau sans cette action (Imprimer › PDF)."
)
SUBMIT_FORM = "Ce PDF contient un formulaire qui envoie des données : déposez une version sans formulaire."
EMBEDDED_FILES = "Ce PDF contient des fichiers joints : déposez une version sans pièces jointes."
TOO_BIG = "Ce fichier dépasse 20 Mo."


class PdfRefused(ValueError):
    """`str()` is the French message for the person who uploaded the file."""


def check_pdf(upload: IO[bytes], *, size: int) -> int:
    """Refuse the file with a PdfRefused, or return its number of pages.

    `size` is the upload's size as Django received it: a file over the limit is
    refused before any of its content is read."""
    if size > MAX_PDF_BYTES:
        raise PdfRefused(TOO_BIG)
    upload.seek(0)
    if not upload.read(5).startswith(b"%PDF-"):
        raise PdfRefused(NOT_A_PDF)
    upload.seek(0)
    try:
        reader = PdfReader(upload, strict=False)
        if reader.is_encrypted:
            raise PdfRefused(ENCRYPTED)
        pages = len(reader.pages)
        _walk(reader.trailer)
    except PdfRefused:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        # pypdf raises a variety of errors on damaged files; all mean the same here.
        raise PdfRefused(NOT_A_PDF) from error
    finally:
        upload.seek(0)
    if pages < 1:
        raise PdfRefused(NOT_A_PDF)
    return pages


def _walk(root: PdfObject) -> None:
    """Every object reachable from the trailer (catalog, names trees, pages,
    annotations, actions, form fields...), each once; iterative, so that a deep
    or cyclic structure neither recurses nor loops."""
    seen: set[tuple[int, int]] = set()
    stack: list[PdfObject] = [root]
    visited = 0
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            key = (item.idnum, item.generation)
            if key in seen:
                continue
            seen.add(key)
            item = item.get_object()
        visited += 1
        if visited > MAX_OBJECTS:
            raise PdfRefused(NOT_A_PDF)
        if isinstance(item, DictionaryObject):  # streams too: their dictionary
            _check(item)
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)


# Actions that reach outside the file: harmless behind a link the reader
# clicks, refused when the file runs them by itself (/OpenAction when it opens,
# /AA when a page opens, a field gets the focus...). JavaScript and Launch are
# refused wherever they are (below).
OUTSIDE_ACTIONS = {"/URI", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE", "/Rendition", "/Sound", "/Movie"}
# /Next chains actions; a hostile chain is cut short (and refused) past this.
MAX_CHAINED_ACTIONS = 100


def _automatic_actions(dictionary: DictionaryObject) -> list[PdfObject]:
    """The actions `dictionary` runs without a click: its /OpenAction (an action,
    or a destination array, which is harmless) and each of its /AA."""
    actions: list[PdfObject] = []
    if "/OpenAction" in dictionary:
        actions.append(dictionary["/OpenAction"])
    additional = dictionary.get("/AA")
    if additional is not None:
        additional = additional.get_object()
        if isinstance(additional, DictionaryObject):
            actions.extend(additional.values())
    return actions


def _reaches_outside(action: PdfObject) -> bool:
    """Whether `action`, or one chained after it by /Next, goes outside the file."""
    stack, count = [action], 0
    while stack:
        item = stack.pop()
        item = item.get_object() if isinstance(item, IndirectObject) else item
        count += 1
        if count > MAX_CHAINED_ACTIONS:
            return True
        if isinstance(item, ArrayObject):
            stack.extend(element for element in item if isinstance(element, DictionaryObject | IndirectObject))
        elif isinstance(item, DictionaryObject):
            if item.get("/S") in OUTSIDE_ACTIONS:
                return True
            if "/Next" in item:
                stack.append(item["/Next"])
    return False


def _check(dictionary: DictionaryObject) -> None:
    action = dictionary.get("/S")
    if any(_reaches_outside(automatic) for automatic in _automatic_actions(dictionary)):
        raise PdfRefused(ON_OPENING)
    # A form that sends its data (even on a click): a report has no business doing it.
    if action in ("/SubmitForm", "/ImportData"):
        raise PdfRefused(SUBMIT_FORM)
    # /JS: a JavaScript action (also in /OpenAction, /AA additional actions and
    # form fields); /JavaScript: the document-level scripts of the names tree;
    # /XFA: the XML forms, which carry their own scripts.
    if "/JS" in dictionary or "/JavaScript" in dictionary or "/XFA" in dictionary or action == "/JavaScript":
        raise PdfRefused(JAVASCRIPT)
    if action == "/Launch":
        raise PdfRefused(LAUNCH)
    # /EmbeddedFiles: the names tree of attachments; /EF: a file specification
    # that carries the file itself; /FileAttachment: an annotation holding one.
    if (
        "/EmbeddedFiles" in dictionary
        or "/EF" in dictionary
        or dictionary.get("/Subtype") == "/FileAttachment"
        or dictionary.get("/Type") == "/EmbeddedFile"
    ):
        raise PdfRefused(EMBEDDED_FILES)
