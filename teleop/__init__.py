"""teleop: drive the RaceCar by keyboard, gamepad or autopilot and record demonstration datasets.

`python -m teleop --help` for the command line. Modules: drivers (the Driver protocol), autopilot, keyboard,
gamepad, window (the live recording window), record (headless recording loop). Importing this package is cheap:
nothing heavy is imported until a module is.
"""
