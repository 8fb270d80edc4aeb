from qa_inspect.cli import main

main()
