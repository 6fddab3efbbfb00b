from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from ingest.models import ApiKey
from metrics.models import DEFAULT_PROJECT_SLUG, Project


class Command(BaseCommand):
    help = (
        "Create an API key for a project and print it once, alone on the last line. "
        "Only its hash is stored: save the key now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="what the key is for, e.g. 'render-01 generator'")
        parser.add_argument(
            "--project",
            default=DEFAULT_PROJECT_SLUG,
            help="project slug (default: %(default)s); created if it does not exist",
        )

    def handle(self, *args, name: str, project: str, **options) -> None:
        slug = slugify(project)
        if not slug:
            raise CommandError(f"{project!r} is not a usable project slug")
        target, created = Project.objects.get_or_create(
            slug=slug, defaults={"name": project}
        )
        if created:
            self.stdout.write(f"Created project {target.slug!r}.")
        key, raw_key = ApiKey.generate(project=target, name=name)
        self.stdout.write(
            f"API key {key.name!r} for project {target.slug!r} (prefix {key.prefix}). "
            "It is shown only this once:"
        )
        self.stdout.write(raw_key)
