from implicit_repro.cli import main

main()
