"""hoprag's web UI: chat over a knowledge base, upload, document management, settings.

Run it with ``hoprag ui`` (an installed wheel), ``make run`` or ``streamlit run app.py``
(a checkout: app.py runs this script). Thin by design: it only
lays out widgets and calls the public :mod:`rag` API; formatting lives in
:mod:`rag.ui_support`. Models are loaded once per process and shared by every
browser session; each session has its own conversation and settings.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid

import streamlit as st

from rag import RAG, Answer, HopragError, Settings
from rag.answer.base import ABSTAIN_TEXT
from rag.components import choices
from rag.embed import make_embedder
from rag.engines import make_engine
from rag.pdfview import render_page
from rag.safe_markdown import escape_html_text, markdown_html, one_block, passage_html
from rag.sample import ensure_sample
from rag.webui import conversations as saved_chats
from rag.webui import admin, signin
from rag.ui_support import (
    ANSWER_MODE_LABELS,
    ENGINE_LABELS,
    MAX_TOKENS_LIMIT,
    STAGE_LABELS,
    UPLOAD_TYPES,
    IngestJob,
    SourceItem,
    answer_length_label,
    citation_label,
    citation_meta,
    display_name,
    escape_markdown,
    format_added,
    knowledge_bases,
    mode_note,
    order_rows,
    page_view,
    password_failed,
    pdf_file,
    plural,
    query_overrides,
    quoted_ranges,
    rag_key,
    embedder_key,
    engine_key,
    settings_from_form,
    source_items,
    step_detail,
    trace_rows,
    unreachable_help,
    unsupported_ranges,
    unverified_ranges,
    upload_needs_password,
    web_page_url,
)

ss = st.session_state
DOCS_PANEL_PX = 380  # the document list scrolls inside this height, so the chat stays on the first screen
DOCS_UNSCROLLED = 5  # up to this many documents the list takes its own height
STREAM_REDRAW_S = 0.1  # how often the streamed answer is re-rendered as Markdown
PAGE_SCALE = 2.0  # page view: pixels per PDF point
PAGE_CONTEXT_PT = 96.0  # page view: the page from this far above the evidence to this far below it


# ---- shared resources (one per process, keyed by the settings they depend on) ----
@st.cache_resource(show_spinner="Loading the embedding model…", max_entries=2)
def shared_embedder(key: tuple, _settings: Settings):
    return make_embedder(_settings)


@st.cache_resource(show_spinner="Loading the language model (once per server start)…", max_entries=2)
def shared_engine(key: tuple, _settings: Settings):
    return make_engine(_settings)


@st.cache_resource(show_spinner=False, max_entries=16)
def kb_handle(key: tuple, _settings: Settings) -> RAG:
    """A knowledge base for listing, ingest and delete (never loads the LLM)."""
    return RAG(_settings, embedder=shared_embedder(embedder_key(_settings), _settings))


@st.cache_resource(show_spinner=False, max_entries=16)
def answer_handle(key: tuple, _settings: Settings) -> RAG:
    """A knowledge base wired to the shared LLM, for answering."""
    return RAG(
        _settings,
        embedder=shared_embedder(embedder_key(_settings), _settings),
        engine=shared_engine(engine_key(_settings), _settings),
    )


def kb_rag() -> RAG:
    return kb_handle(rag_key(ss.settings), ss.settings)


def answer_rag() -> RAG:
    """The answering handle; if the LLM cannot even be built, a handle whose answers are retrieval-only."""
    try:
        return answer_handle(rag_key(ss.settings), ss.settings)
    except HopragError:
        # The pipeline retries the engine and, failing, answers with the passages only.
        return kb_rag()


@st.cache_data(show_spinner=False, max_entries=32)
def page_png(path: str, mtime: float, page: int, boxes: tuple, scale: float, around: float | None) -> bytes:
    return render_page(path, page, boxes, scale, around=around)


# ---- session state and callbacks ---------------------------------------------------
def init_state() -> None:
    if "settings" not in ss:
        try:
            ss.settings = Settings.load()
        except HopragError as exc:
            st.error(f"hoprag cannot start: {escape_markdown(str(exc))}")
            st.stop()
    ss.setdefault("session_id", uuid.uuid4().hex)
    ss.setdefault("messages", [])
    ss.setdefault("notice", "")
    ss.setdefault("settings_error", "")
    ss.setdefault("kb_error", "")
    s = ss.settings
    ss.setdefault("kb_select", s.kb)
    for name, value in (
        ("set_engine", s.engine if s.engine in ENGINE_LABELS else "local"),
        ("set_url", s.llm_base_url),
        ("set_model", s.llm_model),
        ("set_top_k", s.top_k),
        ("set_strategy", s.strategy),
        ("set_hops", s.hops),
        ("set_reranker", s.reranker),
        ("set_kv_cache", s.kv_cache),
        ("set_answer_mode", s.answer_mode),
        ("set_max_tokens", s.max_new_tokens),
    ):
        ss.setdefault(name, value)


def new_chat() -> None:
    ss.messages = []
    ss.session_id = uuid.uuid4().hex  # a fresh conversation gets a fresh engine cache slot


def apply_settings() -> None:
    server = (ss.set_engine, ss.set_url, ss.set_model)
    if not signin.viewer(ss.settings).picks_llm_server:  # the fields are disabled; a crafted rerun changes nothing
        server = (ss.settings.engine, ss.settings.llm_base_url, ss.settings.llm_model)
    try:
        ss.settings = settings_from_form(
            ss.settings,
            engine=server[0],
            llm_base_url=server[1],
            llm_model=server[2],
            top_k=int(ss.set_top_k),
            strategy=ss.set_strategy,
            hops=int(ss.set_hops),
            reranker=ss.set_reranker,
            kv_cache=bool(ss.set_kv_cache),
            answer_mode=ss.set_answer_mode,
            max_new_tokens=int(ss.set_max_tokens),
        )
    except HopragError as exc:
        ss.settings_error = f"Settings not applied: {exc}"
    else:
        ss.settings_error = ""
        ss.notice = "Settings applied."


def switch_kb(name: str) -> None:
    if not signin.viewer(ss.settings).can_read(name):  # also when a crafted rerun asks for it
        ss.kb_error = f"You have no access to the knowledge base {name}."
        return
    try:
        ss.settings = ss.settings.replace(kb=name)
    except HopragError as exc:
        ss.kb_error = str(exc)
        return
    ss.kb_error = ""
    ss.kb_select = name
    new_chat()


def create_kb() -> None:
    name = ss.get("new_kb", "").strip()
    if name and not signin.viewer(ss.settings).manages_kbs:
        ss.kb_error = "Only an admin can create knowledge bases."
    elif name:
        switch_kb(name)
        if not ss.kb_error:
            ss.notice = f"Created knowledge base {name}: upload documents into it."
            signin.record(ss.settings, "kb_create", name)


def delete_doc(doc_id: str, name: str) -> None:
    if not signin.viewer(ss.settings).can_write(ss.settings.kb):  # the button is hidden; a crafted rerun is refused
        ss.notice = f"You may not delete documents in {ss.settings.kb}."
        return
    try:
        kb_rag().delete(doc_id)
    except HopragError as exc:
        ss.notice = f"Could not delete {name}: {exc}"
    else:
        ss.notice = f"Deleted {name}."
        signin.record(ss.settings, "document_delete", ss.settings.kb, doc_id=doc_id, source_name=name)


# ---- sidebar ------------------------------------------------------------------
def sidebar() -> None:
    with st.sidebar:
        st.header("Knowledge base")
        names = signin.viewer(ss.settings).visible(knowledge_bases(ss.settings))
        if ss.kb_select not in names:
            ss.kb_select = ss.settings.kb
        st.selectbox(
            "Current knowledge base",
            names,
            key="kb_select",
            on_change=lambda: switch_kb(ss.kb_select),
        )
        if signin.viewer(ss.settings).manages_kbs:
            with st.form("new_kb_form", clear_on_submit=True, border=False):
                st.text_input("New knowledge base", key="new_kb", placeholder="letters, digits, - or _")
                st.form_submit_button("Create and switch", on_click=create_kb, key="create_kb")
        if ss.kb_error:
            st.error(escape_markdown(ss.kb_error))
        saved_chats.panel(kb_rag, new_chat)

        st.header("Settings")
        with st.form("settings_form", border=False):
            st.selectbox("Answer mode", list(ANSWER_MODE_LABELS), format_func=ANSWER_MODE_LABELS.get,
                         key="set_answer_mode",
                         help="Extractive quotes the evidence sentences (no language model). Generative lets the "
                         "model write the answer. Grounded checks each sentence of the model's answer against the "
                         "sources and leaves out or marks what they do not support. Auto: grounded on the embedded "
                         "model.")
            st.number_input("Answer length (tokens; 0 = default)", min_value=0,
                            max_value=MAX_TOKENS_LIMIT, step=64, key="set_max_tokens",
                            help="The most tokens an answer may have. 0 is the engine's default: short answers "
                            "from the embedded model, long ones from servers.")
            fixed = not signin.viewer(ss.settings).picks_llm_server  # with users, only an admin picks the server
            st.radio("Engine", list(ENGINE_LABELS), format_func=ENGINE_LABELS.get, key="set_engine", disabled=fixed)
            st.text_input("Server URL", key="set_url", placeholder="http://127.0.0.1:8000/v1", disabled=fixed,
                          help="Any OpenAI-compatible server: vLLM, llama.cpp, Ollama, OpenAI.")
            st.text_input("Model name", key="set_model", placeholder="the served model name", disabled=fixed)
            st.number_input("Passages per answer (top-k)", min_value=1, max_value=50, step=1, key="set_top_k")
            st.selectbox("Retrieval strategy", choices("strategy"), key="set_strategy")
            st.number_input("Hops (multi-hop strategies)", min_value=1, max_value=5, step=1, key="set_hops")
            st.selectbox("Reranker", choices("reranker"), key="set_reranker")
            st.toggle("Reuse the KV cache", key="set_kv_cache",
                      help="Keep computed prompt prefixes so follow-up questions start faster.")
            st.form_submit_button("Apply settings", type="primary", on_click=apply_settings, key="apply_settings")
        if ss.settings_error:
            st.error(escape_markdown(ss.settings_error))
        s = ss.settings
        engine = f"{s.llm_model} at {s.llm_base_url}" if s.engine == "openai" else ENGINE_LABELS.get(s.engine, s.engine)
        st.caption(escape_markdown(
            f"In use: {engine}; {s.strategy} retrieval, top-{s.top_k}, reranker {s.reranker}; "
            f"{s.answer_mode} answers, {answer_length_label(s.max_new_tokens)}."
        ))


# ---- knowledge base panel ---------------------------------------------------------
def ingest_status() -> None:
    """Each file of the current upload: a progress bar (parse → chunk → embed → store) or its one-line failure."""
    job: IngestJob = ss.ingest_job
    for name, (stage, fraction), result in zip(job.names, job.stages, job.results):
        if result is None:
            st.progress(fraction, text=f"{name} · {STAGE_LABELS.get(stage, stage)}")
        elif password_failed(result):
            st.caption(escape_markdown(f"{name}: the password did not open it"))
        elif result.status == "failed":
            st.error(escape_markdown(f"{name}: {result.reason}"))
        else:
            st.progress(1.0, text=f"{name} · {result.status} · {plural(result.pages, 'page')}, "
                        f"{plural(result.chunks, 'chunk')}")
    if job.done and st.session_state.get("ingest_polling"):
        # the last poll: redraw the whole page so the document list and the chat see the new files
        ss.ingest_polling = False
        st.rerun()


def password_form(rag: RAG) -> None:
    """Encrypted PDFs of the last upload: ask for the password (never stored), then ingest them with it."""
    locked = ss.locked_uploads
    names = ", ".join(name for name, _ in locked)
    with st.form("password_form", clear_on_submit=True):
        retry = ss.get("password_retry", False)
        st.warning(escape_markdown(f"{names} {'is' if len(locked) == 1 else 'are'} password-protected"
                                   + (": that password did not open it, try again." if retry else ".")))
        st.text_input("PDF password", type="password", key="pdf_password")
        go = st.form_submit_button("Open and add", type="primary", key="add_locked")
    if go and ss.get("pdf_password"):
        ss.ingest_job = IngestJob(rag, locked, password=ss.pdf_password).start()
        signin.record(ss.settings, "ingest", ss.settings.kb, sources=[name for name, _ in locked])
        ss.locked_retry_files = locked
        ss.locked_uploads = []
        st.rerun()


def knowledge_panel(rag: RAG) -> None:
    """Upload (folded away once there are documents) and the document list, in a fixed height."""
    st.subheader("Documents")
    job: IngestJob | None = ss.get("ingest_job")
    busy = job is not None and not job.done
    docs = rag.documents()
    if job is not None and job.done and ss.get("locked_retry_files"):
        # Encrypted PDFs the given password did not open: ask again (their bytes are still in this session).
        wrong = {name for name, result in zip(job.names, job.results) if password_failed(result)}
        ss.locked_uploads = [f for f in ss.locked_retry_files if f[0] in wrong]
        ss.password_retry = bool(wrong)
        ss.locked_retry_files = []
    writable = signin.viewer(ss.settings).can_write(ss.settings.kb)  # a reader sees no upload or delete controls
    submitted = fetch = False
    if writable:
        with st.expander("Add documents", expanded=not docs or busy, icon=":material/upload_file:"):
            with st.form("upload_form", clear_on_submit=True, border=False):
                files = st.file_uploader(
                    "Add documents (PDF, scans, Word, PowerPoint, Excel, CSV, Markdown, text, HTML)",
                    type=list(UPLOAD_TYPES),
                    accept_multiple_files=True,
                    key="uploads",
                )
                submitted = st.form_submit_button("Add to knowledge base", type="primary", key="add_files",
                                                  disabled=busy)
            with st.form("web_form", clear_on_submit=True, border=False):
                st.text_input("Add a web page", key="web_url", placeholder="https://example.org/manual/")
                st.number_input("Follow links on the same site (levels)", min_value=0, max_value=3, step=1,
                                key="web_depth", help="0 = this page only; pages of other sites are never followed")
                fetch = st.form_submit_button("Fetch and add", key="add_url", disabled=busy)
    if submitted and files and not busy:
        uploads = [(f.name, f.getvalue()) for f in files]
        locked = [u for u in uploads if upload_needs_password(u[1])]
        ss.locked_uploads, ss.password_retry = locked, False  # asked for below; the others go in now
        uploads = [u for u in uploads if u not in locked]
        if uploads:
            # in a background thread: questions can be asked while files are ingested
            ss.ingest_job = job = IngestJob(rag, uploads).start()
            signin.record(ss.settings, "ingest", ss.settings.kb, sources=[name for name, _ in uploads])
            busy = True
    if fetch and not busy and ss.get("web_url", "").strip():
        try:
            url = web_page_url(ss.web_url)
        except ValueError as exc:
            st.error(escape_markdown(str(exc)))
        else:
            ss.ingest_job = job = IngestJob(rag, [url], crawl_depth=int(ss.get("web_depth", 0))).start()
            signin.record(ss.settings, "ingest", ss.settings.kb, sources=[url])
            busy = True
    if ss.get("locked_uploads") and not busy:
        password_form(rag)
    if job is not None:
        ss.ingest_polling = busy
        st.fragment(ingest_status, run_every=0.5 if busy else None)()
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f"{plural(len(docs), 'document')} in **{escape_markdown(ss.settings.kb)}**")
        st.button("Refresh", key="refresh", help="Show documents added from other sessions", icon=":material/refresh:")
    if not docs:
        return
    # A fixed height: however many documents there are, the page (and the chat) does not grow with them.
    with st.container(height=DOCS_PANEL_PX if len(docs) > DOCS_UNSCROLLED else "content", key="doc_list"):
        for doc in docs:
            name = display_name(doc.source)
            with st.container(horizontal=True, vertical_alignment="center", wrap=False, gap="small"):
                st.markdown(
                    f"**{escape_markdown(name)}**  \n"
                    f"{plural(doc.pages, 'page')} · {plural(doc.chunks, 'chunk')} · added {format_added(doc.added)}",
                    width="stretch",
                )
                if writable:
                    st.button(
                        "Delete", key=f"delete-{doc.doc_id}", on_click=delete_doc, args=(doc.doc_id, name),
                        help=f"Remove {name} from this knowledge base", icon=":material/delete:", type="tertiary",
                    )


# ---- chat -------------------------------------------------------------------------
def html(fragment: str, container=st) -> None:
    """Show HTML made safe by :mod:`rag.safe_markdown` (one raw block: Markdown interprets none of it)."""
    container.markdown(fragment, unsafe_allow_html=True)


def show_page_view(item: SourceItem, key: str) -> None:
    """A toggle under a PDF passage: the page rendered by PDFium, the evidence boxed on it."""
    c = item.citation
    pdf = pdf_file(kb_rag(), c.doc_id, c.source) if c.page is not None else None
    if pdf is None:
        return
    if not st.toggle("Page view", key=key, help="The PDF page, rendered, with the evidence highlighted on it"):
        return
    try:
        view = page_view(item, pdf)
        if view is None:
            return
        page, boxes = view
        around = None if ss.get(f"{key}-whole") else PAGE_CONTEXT_PT
        png = page_png(str(pdf), pdf.stat().st_mtime, page, boxes, PAGE_SCALE, around)
    except Exception as exc:  # a PDF that changed or broke since ingest: say so, keep the answer
        st.caption(escape_markdown(f"The page cannot be shown: {type(exc).__name__}: {exc}"))
        return
    where = "evidence highlighted" if boxes else "evidence not found on the page's text layer"
    name = display_name(c.source)
    st.image(png, caption=f"{name}, page {page} ({where})", alt=f"Page {page} of {name}, {where}", output_format="PNG")
    if boxes:
        st.checkbox("Whole page", key=f"{key}-whole",
                    help="Show the whole page instead of the part around the evidence")


def show_source(item: SourceItem, key: str, expanded: bool) -> None:
    c = item.citation
    with st.expander(citation_label(c), expanded=expanded):
        st.caption(citation_meta(c))
        html(passage_html(c.text, c.highlights if item.cited else ()))
        show_page_view(item, key)


def show_sources(answer: Answer, mid: str) -> None:
    """Every passage the answer was built from: cited ones (evidence highlighted), then the others."""
    items = source_items(answer)
    if not items:
        return
    cited = [i for i in items if i.cited]
    others = [i for i in items if not i.cited]
    if cited:
        st.markdown("**Sources**")
        for n, item in enumerate(cited):
            show_source(item, f"pv-{mid}-{item.citation.chunk_id}", expanded=n == 0 and bool(item.citation.highlights))
    if others:
        if answer.abstained:
            st.markdown("**Nearest passages**")
        elif cited:
            st.markdown("**Also retrieved**")
        else:
            st.markdown("**Passages found**")
            if answer.text:
                st.caption("The answer cites none of these passages.")
        for item in others:
            show_source(item, f"pv-{mid}-{item.citation.chunk_id}", expanded=False)


def show_trace(answer: Answer) -> None:
    if not answer.trace.steps:
        return
    with st.expander("How this answer was found"):
        t, u = answer.timings, answer.usage
        cols = st.columns(4)
        cols[0].metric("First token", f"{t['ttft_s']:.1f} s" if "ttft_s" in t else "–",
                       help="Time to first token: retrieval plus reading the prompt")
        cols[1].metric("Total", f"{t['total_s']:.1f} s" if "total_s" in t else "–")
        cols[2].metric("Prompt tokens", u.prompt_tokens)
        cols[3].metric("Cached", u.cached_tokens, help="Prompt tokens reused from the KV cache instead of computed")
        for i, step in enumerate(answer.trace.steps, 1):
            st.markdown(f"**{i}. {escape_markdown(step.name)}** · {step.seconds:.2f} s")
            if step.query:
                st.caption("Query: " + escape_markdown(step.query))
            if step.hits:
                st.dataframe(trace_rows(step, answer.passages), hide_index=True)
            order, rest = step_detail(step)
            for label in ("before", "after"):
                if label in order:
                    st.caption(f"Rerank order {label}")
                    st.dataframe(order_rows(order[label], answer.passages, order.get("scores")), hide_index=True)
            if rest and all(isinstance(v, (str, int, float, bool)) for v in rest.values()):
                st.caption(escape_markdown(" · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in rest.items())))
            elif rest:
                st.json(json.loads(json.dumps(rest, default=str)), expanded=False)


def show_answer_text(answer: Answer, slot) -> None:
    """The answer as safe Markdown (unsupported sentences and unverified words marked), or the abstain notice."""
    if answer.abstained:  # the answer's own words say why (e.g. a name the documents never mention)
        slot.info(escape_markdown(answer.text or ABSTAIN_TEXT))
    elif answer.text:
        html(markdown_html(answer.text, unsupported_ranges(answer), quoted_ranges(answer.text),
                           unverified_ranges(answer)), slot)


def show_answer(message: dict, slot=None) -> None:
    """Draw a finished answer; ``slot`` is the placeholder the streamed text was shown in (replaced here)."""
    answer: Answer = message["answer"]
    mid = message.setdefault("id", uuid.uuid4().hex)
    if answer.error:
        (st if slot is None else slot).warning(
            "The language model could not answer, so this is a retrieval-only answer: "
            "the passages below matched your question.  \n"
            + escape_markdown(answer.error)
            + "  \n**Check that** "
            + "; ".join(escape_markdown(h) for h in message.get("help", []))
            + "."
        )
    else:
        show_answer_text(answer, st if slot is None else slot)
    if answer.unsupported:
        left_out = "".join(f"<li>{escape_html_text(s)}</li>" for s in answer.unsupported)
        with st.expander(f"⚠ {plural(len(answer.unsupported), 'sentence')} left out: not supported by the sources"):
            html(one_block(f'<ul class="hoprag-left-out" title="not supported by the sources">{left_out}</ul>'))
    note = mode_note(answer)
    if note:
        st.caption(note)
    show_sources(answer, mid)
    show_trace(answer)


def ask(rag: RAG, question: str) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        final: dict = {}

        def pieces():
            for item in rag.stream(
                question,
                **saved_chats.stream_args(),  # the saved conversation: its history; the answer is saved
                **query_overrides(rag.settings, ss.settings),
            ):
                if isinstance(item, Answer):
                    final["answer"] = item
                else:
                    yield item

        slot = st.empty()
        try:
            stream = pieces()
            with st.spinner("Searching the knowledge base and thinking…", show_time=True):
                first = next(stream, None)
            # Re-render the text so far as safe Markdown as it grows (never raw: model output is untrusted).
            text, shown_at = "", 0.0
            for piece in itertools.chain([first] if first is not None else [], stream):
                text += piece
                if time.monotonic() - shown_at >= STREAM_REDRAW_S:
                    html(markdown_html(text + " ▌"), slot)
                    shown_at = time.monotonic()
        except HopragError as exc:
            slot.error(escape_markdown(str(exc)))
            return
        answer = final["answer"]
        message = {"role": "assistant", "answer": answer, "id": uuid.uuid4().hex}
        if answer.error:
            message["help"] = unreachable_help(ss.settings)
        show_answer(message, slot)  # the final text (checked and marked) replaces the streamed one
    ss.messages.append({"role": "user", "text": question})
    ss.messages.append(message)


def chat_panel(docs: list, question: str | None) -> None:
    with st.container(horizontal=True, vertical_alignment="center"):
        st.subheader("Chat")
        st.button("New chat", key="new_chat", on_click=new_chat, icon=":material/add_comment:")
    if not docs and not signin.viewer(ss.settings).can_write(ss.settings.kb):
        st.info("This knowledge base is empty: an editor or an admin of it can add documents.")
    elif not docs:
        st.info(
            "This knowledge base is empty. Upload PDFs, Markdown, text, HTML or Word files on the right "
            "(manuals, notes, papers), then ask questions about them. Or load hoprag's own documentation "
            "as a sample."
        )
        if st.button("Load the sample knowledge base", key="load_sample"):
            with st.spinner("Indexing hoprag's documentation…"):
                ensure_sample(kb_rag())
            st.rerun()
    elif not ss.messages and not question:
        st.caption(
            f"Ask anything about the {plural(len(docs), 'document')} in this knowledge base. Answers cite the "
            "passages they come from; open a source to read it, or “How this answer was found” for the steps."
        )
    saved_chats.mark_deleted(ss.messages, docs)  # citations of documents deleted since they were cited
    for message in ss.messages:
        with st.chat_message(message["role"]):
            if message["role"] == "user":
                st.markdown(escape_markdown(message["text"]))
            else:
                show_answer(message)
    if question:
        ask(answer_rag(), question)


def main() -> None:
    st.set_page_config(page_title="hoprag", page_icon=":material/hub:", layout="wide")
    init_state()
    signin.account(ss.settings, signin.gate(ss.settings, switch_kb))  # sign-in first when users exist (issue 20)
    sidebar()
    if admin.page(ss.settings):  # a signed-in admin's "Manage users" page replaces the chat
        return
    st.title("hoprag")
    st.caption("Answers from your documents, with the passages they come from and how they were found.")
    if ss.notice:
        st.toast(escape_markdown(ss.notice))
        ss.notice = ""
    question = st.chat_input("Ask a question about your documents", key="question", max_chars=4000)
    chat_col, kb_col = st.columns([3, 2], gap="large")
    try:
        rag = kb_rag()
        with kb_col:
            knowledge_panel(rag)
        docs = rag.documents()
    except HopragError as exc:
        st.error(escape_markdown(f"The knowledge base cannot be opened: {exc}"))
        st.stop()
    with chat_col:
        chat_panel(docs, question)
    saved_chats.refresh_after(question)


main()
