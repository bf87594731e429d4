// The page's "what your files give away" panel (#metadata-report): filled when
// files are chosen, in the page's language (texts from #sealing-messages), and
// asked for the files to seal: with "remove" ticked (the default), JPEG and PNG
// pictures are replaced by lossless copies without their metadata. Values are
// shown with textContent only: a file's metadata is never HTML.

import { KINDS } from "./kinds.js";
import { inspectAttachment, withoutMetadata } from "./index.js";

const MAX_FILES_INSPECTED = 100;

export class MetadataPanel {
  constructor(root, fileInput, messages) {
    this.root = root;
    this.fileInput = fileInput;
    this.messages = messages;
    this.list = root.querySelector("#metadata-files");
    this.strip = root.querySelector("#metadata-strip");
    this.documentsNote = root.querySelector("#metadata-documents");
    this.inspections = new Map(); // File -> inspection
    this.pending = Promise.resolve();
    fileInput.addEventListener("change", () => {
      this.pending = this.inspect(Array.from(fileInput.files));
    });
  }

  async inspect(files) {
    this.inspections = new Map();
    this.list.replaceChildren();
    this.root.hidden = files.length === 0;
    this.root.dataset.state = "reading";
    let documents = false;
    for (const file of files.slice(0, MAX_FILES_INSPECTED)) {
      const inspection = await inspectAttachment(file);
      this.inspections.set(file, inspection);
      this.list.append(this.describe(file, inspection));
      if ((inspection.format === "pdf" || inspection.format === "office") && inspection.kinds.size) {
        documents = true;
      }
    }
    this.documentsNote.hidden = !documents;
    this.root.dataset.state = "done";
  }

  describe(file, inspection) {
    const item = document.createElement("li");
    item.dataset.format = inspection.format;
    const name = document.createElement("strong");
    name.textContent = file.name;
    item.append(name, ": ");
    if (inspection.problem) {
      item.dataset.kinds = "unreadable";
      item.append(this.messages.metadata_unreadable);
      if (inspection.removable) item.append(" ", this.messages.metadata_removable);
      return item;
    }
    if (inspection.kinds.size === 0) {
      item.dataset.kinds = "";
      item.append(
        inspection.plain ? this.messages.metadata_plain_text
        : inspection.unknown ? this.messages.metadata_unknown
        : this.messages.metadata_none,
      );
      return item;
    }
    const kinds = KINDS.filter((kind) => inspection.kinds.has(kind));
    item.dataset.kinds = kinds.join(" ");
    const details = document.createElement("ul");
    for (const kind of kinds) {
      const line = document.createElement("li");
      line.dataset.kind = kind;
      const values = inspection.kinds.get(kind);
      line.textContent = this.messages[`metadata_${kind}`] + (values.length ? `: ${values.join("; ")}` : "");
      details.append(line);
    }
    const action = document.createElement("p");
    action.className = "hint";
    if (inspection.removable) action.textContent = this.messages.metadata_removable;
    else if (inspection.format === "picture") action.textContent = this.messages.metadata_kept_picture;
    else action.textContent = this.messages.metadata_kept;
    item.append(details, action);
    return item;
  }

  /** The files to seal: cleaned copies of pictures when removal is on. */
  async prepare(files) {
    await this.pending;
    if (!this.strip.checked) return files;
    const prepared = [];
    for (const file of files) {
      const inspection = this.inspections.get(file) || (await inspectAttachment(file));
      prepared.push(await withoutMetadata(file, inspection));
    }
    return prepared;
  }
}
