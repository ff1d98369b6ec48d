"""What every part of kerasdnn shares: the settings and their rules (:mod:`.config`),
the user-facing errors (:mod:`.errors`), the one JSON reader and atomic writer
(:mod:`.io`), the Keras backend of the process (:mod:`.runtime`) and the run
directory's layout (:mod:`.rundir`).  Library only: no command, no printing."""
