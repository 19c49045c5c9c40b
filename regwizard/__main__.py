from regwizard.cli import main

raise SystemExit(main())
