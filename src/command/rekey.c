int pgs_cmd_rekey(int argc, char **argv);
int pgs_cmd_rekey(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 2;
}
