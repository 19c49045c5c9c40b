"""Browse images: the registry's repositories, then a repository's tags with digest and
size, loaded a page at a time (More, or moving the cursor onto the last row); Delete tag
asks first, showing repo:tag and the digest it deletes.

Everything goes through ``backend.browse`` (the registry's API as the verify user, over
a connection verified against the plan's trust anchor) in thread workers.
"""

from __future__ import annotations

import os
import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Label, Static

from regwizard.errors import Cancelled, HostKeyUnknown, RegwizardError
from regwizard.plan import Plan, Secrets
from regwizard.registry_api import Page, TagInfo, human_size, short_digest
from regwizard.screens.base import plain
from regwizard.screens.dialogs import (
    ConfirmDialog,
    ErrorDialog,
    HostKeyDialog,
    PasswordDialog,
)

PAGE = 100


class Opened(Message):
    def __init__(self, browser: object, page: Page) -> None:
        super().__init__()
        self.browser = browser
        self.page = page


class Failed(Message):
    def __init__(self, title: str, error: RegwizardError) -> None:
        super().__init__()
        self.title = title
        self.error = error


class ReposLoaded(Message):
    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page


class TagLoaded(Message):
    def __init__(self, info: TagInfo) -> None:
        super().__init__()
        self.info = info


class TagsPaged(Message):
    def __init__(self, repo: str, next_last: str) -> None:
        super().__init__()
        self.repo = repo
        self.next_last = next_last


class Deleted(Message):
    def __init__(self, repo: str, digest: str, tag: str) -> None:
        super().__init__()
        self.repo = repo
        self.digest = digest
        self.tag = tag


class BrowseScreen(Screen[None]):
    """Repositories and tags of the plan's registry; Esc goes back."""

    STEP = "browse"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("delete", "delete_tag", "Delete tag"),
    ]

    def __init__(self, plan: Plan, secrets: Secrets) -> None:
        super().__init__()
        self.plan = plan
        self.secrets = secrets
        self.cancel = threading.Event()
        self.browser: object | None = None
        self.repos_next = ""
        self.repo = ""  # the repository whose tags are shown
        self.tags_next = ""
        self.infos: dict[str, TagInfo] = {}  # tag -> info, of self.repo
        self.loading_tags = False
        self.loading_repos = False

    def compose(self) -> ComposeResult:
        reg = self.plan.registry
        with Vertical(id="browse-body"):
            yield Label(f"Images on {reg.address}", classes="page-title", markup=False)
            yield Static("Connecting…", id="browse-status", markup=False)
            with Horizontal(id="browse-tables"):
                yield DataTable(id="repos", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="tags", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="nav"):
            yield Button("Back", id="back")
            yield Static(classes="spacer")
            yield Button("More repositories", id="more-repos", disabled=True)
            yield Button("More tags", id="more-tags", disabled=True)
            yield Button("Delete tag", id="delete", variant="error", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        freeze = getattr(self.app, "freeze_widgets", None)
        if freeze is not None:
            freeze(self)
        self.query_one("#repos", DataTable).add_column("Repository", key="repo")
        tags = self.query_one("#tags", DataTable)
        tags.add_column("Tag", key="tag")
        tags.add_column("Digest", key="digest")
        tags.add_column("Size", key="size")
        self.ask_then_open()

    # -- opening

    @work(exclusive=True, group="browse-ask", exit_on_error=False)
    async def ask_then_open(self) -> None:
        """Ask for what the connection needs and is not known yet, then connect."""
        from regwizard.screens.review import needed_passwords

        env = os.environ.get("REGWIZARD_PASSWORD", "")
        if env and not self.secrets.verify_password:
            self.secrets.verify_password = env
        only_registry = Plan(
            registry=self.plan.registry,
            host=self.plan.host,
            clients=[],
            certificate=self.plan.certificate,
            users=self.plan.users,
            verify=self.plan.verify,
        )
        for kind, key, prompt in needed_passwords(only_registry, self.secrets):
            if kind == "verify":
                prompt = f"Password of registry user {key} (to list and delete images)"
            answer = await self.app.push_screen_wait(
                PasswordDialog(prompt, "Needed to read the registry; kept in memory only.")
            )
            if not answer:
                self._status("Not connected: a password is needed. Esc goes back.")
                return
            if kind == "ssh":
                self.secrets.ssh_passwords[key] = answer
            elif kind == "sudo":
                self.secrets.sudo_passwords[key] = answer
            else:
                self.secrets.verify_password = answer
        self.open_registry()

    @work(thread=True, exclusive=True, exit_on_error=False, group="browse-open")
    def open_registry(self) -> None:
        backend = self.app.backend  # type: ignore[attr-defined]
        try:
            browser = backend.browse(self.plan, self.secrets, self.cancel)
            page = browser.repositories("", PAGE)
        except Cancelled:
            return
        except RegwizardError as e:
            self.post_message(Failed("Could not open the registry", e))
            return
        self.post_message(Opened(browser, page))

    @on(Opened)
    def opened(self, m: Opened) -> None:
        self.browser = m.browser
        self._add_repos(m.page)
        self.query_one("#repos", DataTable).focus()

    @on(Failed)
    def failed(self, m: Failed) -> None:
        e = m.error
        self._status(f"{e.cause}")
        if isinstance(e, HostKeyUnknown):

            def trusted(yes: bool | None) -> None:
                if yes:
                    self.secrets.accepted_host_keys.add(e.fingerprint)
                    self._status("Connecting…")
                    self.open_registry()

            self.app.push_screen(HostKeyDialog(e.host, e.fingerprint, e.key_type), trusted)
            return
        self.app.push_screen(ErrorDialog(m.title, e.cause, e.fix, e.evidence))

    def _status(self, text: str) -> None:
        self.query_one("#browse-status", Static).update(plain(text))

    # -- repositories

    def _add_repos(self, page: Page) -> None:
        table = self.query_one("#repos", DataTable)
        for name in page.items:
            if name not in table.rows:
                table.add_row(name, key=name)
        self.repos_next = page.next
        self.loading_repos = False
        self.query_one("#more-repos", Button).disabled = not page.next
        more = " (more: press More repositories)" if page.next else ""
        self._status(f"{table.row_count} repositories{more}. Enter shows a repository's tags.")

    @on(Button.Pressed, "#more-repos")
    def more_repositories(self) -> None:
        if self.repos_next and not self.loading_repos and self.browser is not None:
            self.loading_repos = True
            self.load_repos(self.repos_next)

    @work(thread=True, exclusive=True, exit_on_error=False, group="browse-repos")
    def load_repos(self, last: str) -> None:
        try:
            page = self.browser.repositories(last, PAGE)  # type: ignore[union-attr]
        except RegwizardError as e:
            self.post_message(Failed("Could not list repositories", e))
            return
        self.post_message(ReposLoaded(page))

    @on(ReposLoaded)
    def repos_loaded(self, m: ReposLoaded) -> None:
        self._add_repos(m.page)

    @on(DataTable.RowSelected, "#repos")
    def repository_chosen(self, event: DataTable.RowSelected) -> None:
        repo = str(event.row_key.value)
        self.repo = repo
        self.infos.clear()
        self.tags_next = ""
        self.query_one("#tags", DataTable).clear()
        self.query_one("#delete", Button).disabled = True
        self.loading_tags = True
        self._status(f"{repo}: reading tags…")
        self.load_tags(repo, "")

    @on(DataTable.RowHighlighted, "#repos")
    def repo_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if event.cursor_row == table.row_count - 1:
            self.more_repositories()  # at the last row: load the next page

    # -- tags

    @work(thread=True, exclusive=True, exit_on_error=False, group="browse-tags")
    def load_tags(self, repo: str, last: str) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        try:
            page = self.browser.tags(repo, last, PAGE)  # type: ignore[union-attr]
        except RegwizardError as e:
            self.post_message(Failed(f"Could not list the tags of {repo}", e))
            return
        for tag in page.items:
            if worker.is_cancelled or self.cancel.is_set():
                return
            self.post_message(TagLoaded(self.browser.tag_info(repo, tag)))  # type: ignore[union-attr]
        self.post_message(TagsPaged(repo, page.next))

    @on(TagLoaded)
    def tag_loaded(self, m: TagLoaded) -> None:
        info = m.info
        if info.repo != self.repo or info.tag in self.infos:
            return
        self.infos[info.tag] = info
        if info.error:
            digest, size = "?", plain(info.error)[:60]
        else:
            digest = short_digest(info.digest)
            size = human_size(info.size)
            if info.platforms:
                size += f" ({len(info.platforms)} platforms)"
        self.query_one("#tags", DataTable).add_row(info.tag, digest, size, key=info.tag)
        self.query_one("#delete", Button).disabled = False

    @on(TagsPaged)
    def tags_paged(self, m: TagsPaged) -> None:
        if m.repo != self.repo:
            return
        self.tags_next = m.next_last
        self.loading_tags = False
        self.query_one("#more-tags", Button).disabled = not m.next_last
        more = " (more: press More tags)" if m.next_last else ""
        self._status(f"{self.repo}: {len(self.infos)} tags{more}")

    @on(Button.Pressed, "#more-tags")
    def more_tags(self) -> None:
        if self.tags_next and not self.loading_tags and self.browser is not None:
            self.loading_tags = True
            self._status(f"{self.repo}: reading more tags…")
            self.load_tags(self.repo, self.tags_next)

    @on(DataTable.RowHighlighted, "#tags")
    def tag_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row == event.data_table.row_count - 1:
            self.more_tags()

    # -- delete

    def _chosen_tag(self) -> TagInfo | None:
        table = self.query_one("#tags", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self.infos.get(str(key.value))

    @on(Button.Pressed, "#delete")
    def action_delete_tag(self) -> None:
        info = self._chosen_tag()
        if info is None or self.browser is None:
            return
        if info.error or not info.digest:
            self.notify("This tag's digest could not be read.", severity="warning")
            return
        same = sorted(t for t, i in self.infos.items() if i.digest == info.digest and t != info.tag)
        also = (
            f"\n\nThese tags point at the same digest and go too: {', '.join(same)}" if same else ""
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete_manifest(info.repo, info.digest, info.tag)

        self.app.push_screen(
            ConfirmDialog(
                "Delete this tag?",
                f"{info.repo}:{info.tag}\n{info.digest}\n\nThe manifest is deleted from the "
                f"registry; the disk space comes back after garbage collection.{also}",
                yes_label="Delete",
                no_label="Keep",
                danger=True,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="browse-delete")
    def delete_manifest(self, repo: str, digest: str, tag: str) -> None:
        backend = self.app.backend  # type: ignore[attr-defined]
        try:
            backend.delete_tag(self.browser, repo, digest)
        except RegwizardError as e:
            self.post_message(Failed(f"Could not delete {repo}:{tag}", e))
            return
        self.post_message(Deleted(repo, digest, tag))

    @on(Deleted)
    def deleted(self, m: Deleted) -> None:
        if m.repo != self.repo:
            return
        table = self.query_one("#tags", DataTable)
        for tag, info in list(self.infos.items()):
            if info.digest == m.digest:
                table.remove_row(tag)
                del self.infos[tag]
        self.query_one("#delete", Button).disabled = not self.infos
        self._status(f"deleted {m.repo}:{m.tag} ({short_digest(m.digest)})")
        self.notify(f"Deleted {m.repo}:{m.tag}", title="Deleted", markup=False)

    # -- leaving

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.cancel.set()
        self.app.pop_screen()
