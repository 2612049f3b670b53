"""Active queue management models shared by the P4 backend and the simulator."""
